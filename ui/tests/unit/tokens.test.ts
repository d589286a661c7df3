import { describe, expect, test } from 'vitest';
import type { StepRecord, StepTrace } from '../../src/ipc';
import { flattenTokens, legendFor, ORIGIN_STYLES, originCounts, tokenDetails, visibleToken } from '../../src/lib/tokens';

function step(partial: Partial<StepTrace>, texts: string[], elapsed = 10): StepRecord {
  const trace: StepTrace = {
    step: 0,
    gamma: { gamma: 2, policy_gamma: 2, rule: 'Fixed', alpha_estimate: null, cost_ratio: null },
    drafts: [],
    verified: [],
    judged: 0,
    accepted: 0,
    final_token: null,
    emitted: [],
    retracted: 0,
    draft_ms: 1,
    verify_ms: 10,
    draft_forwards: 2,
    target_forwards: 1,
    ...partial,
  };
  return { trace, tokens: trace.emitted.map((e, i) => ({ id: e.token, text: texts[i], origin: e.origin })), elapsed_ms: elapsed };
}

// Step 0: draft 10 accepted, draft 11 rejected → corrected 12.
const rejected = step(
  {
    drafts: [
      { token: 10, q: 0.9, q_top: [{ token: 10, prob: 0.9 }], ngram_context_len: null },
      { token: 11, q: 0.6, q_top: [{ token: 11, prob: 0.6 }, { token: 12, prob: 0.3 }], ngram_context_len: null },
    ],
    verified: [
      { index: 5, p_draft: 0.8, p_top: [{ token: 10, prob: 0.8 }] },
      { index: 6, p_draft: 0.05, p_top: [{ token: 12, prob: 0.7 }, { token: 11, prob: 0.05 }] },
    ],
    judged: 2,
    accepted: 1,
    final_token: { token: 12, origin: 'Corrected' },
    emitted: [
      { token: 10, origin: 'AcceptedDraft' },
      { token: 12, origin: 'Corrected' },
    ],
  },
  [' the', ' cat'],
);
// Step 1: both drafts accepted, then a bonus token.
const bonus = step(
  {
    step: 1,
    drafts: [
      { token: 13, q: 1, q_top: [{ token: 13, prob: 1 }], ngram_context_len: 2 },
      { token: 14, q: 1, q_top: [{ token: 14, prob: 1 }], ngram_context_len: 1 },
    ],
    verified: [
      { index: 7, p_draft: 0.9, p_top: [{ token: 13, prob: 0.9 }] },
      { index: 8, p_draft: 0.7, p_top: [{ token: 14, prob: 0.7 }] },
      { index: 9, p_draft: null, p_top: [{ token: 15, prob: 0.6 }] },
    ],
    judged: 2,
    accepted: 2,
    final_token: { token: 15, origin: 'Bonus' },
    emitted: [
      { token: 13, origin: 'NgramHit' },
      { token: 14, origin: 'NgramHit' },
      { token: 15, origin: 'Bonus' },
    ],
  },
  [' sat', ' on', ' the'],
);
const vocab = { '10': ' the', '11': ' dog', '12': ' cat', '13': ' sat', '14': ' on', '15': ' mat' };

describe('token colouring', () => {
  test('every origin has a class, a label and a sentence', () => {
    for (const style of Object.values(ORIGIN_STYLES)) {
      expect(style.className).toMatch(/^tok-/);
      expect(style.description).toMatch(/\.$/);
    }
  });
  test('legends list only the origins a mode can produce', () => {
    expect(legendFor(['plain']).map((e) => e.origin)).toEqual(['Target']);
    expect(legendFor(['speculative']).map((e) => e.origin)).toEqual(['AcceptedDraft', 'Corrected', 'Bonus']);
    expect(legendFor(['plain', 'nasd']).map((e) => e.origin)).toEqual(['NgramHit', 'Corrected', 'Bonus', 'Target']);
  });
  test('flattening keeps order, origins and where each token sits in its step', () => {
    const tokens = flattenTokens([rejected, bonus]);
    expect(tokens.map((t) => t.text).join('')).toBe(' the cat sat on the');
    expect(tokens.map((t) => t.origin)).toEqual(['AcceptedDraft', 'Corrected', 'NgramHit', 'NgramHit', 'Bonus']);
    expect(tokens[3]).toMatchObject({ index: 3, step: 1, offset: 1 });
    expect(originCounts(tokens)).toEqual({ Target: 0, AcceptedDraft: 1, Corrected: 1, Bonus: 1, NgramHit: 2 });
  });
  test('retracted tokens (a stop string reached back) disappear', () => {
    const stop = step({ step: 2, retracted: 2, emitted: [{ token: 15, origin: 'Target' }] }, ['!']);
    expect(flattenTokens([bonus, stop]).map((t) => t.text)).toEqual([' sat', '!']);
  });
});

describe('token inspector', () => {
  const tokens = flattenTokens([rejected, bonus]);
  test('a corrected token shows p and q at its position and the rejected guess', () => {
    const d = tokenDetails(tokens[1], [rejected, bonus], vocab)!;
    expect(d.p.map((r) => r.text)).toEqual([' cat', ' dog']);
    expect(d.p[0].chosen).toBe(true);
    expect(d.p[1].drafted).toBe(true);
    expect(d.q.map((r) => r.id)).toEqual([11, 12]);
    expect(d.draft).toEqual({ id: 11, text: ' dog', q: 0.6, p: 0.05, accepted: false });
    expect(d.explanation).toBe('The guess " dog" was rejected (p = 5% against q = 60%); the big model wrote " cat" instead.');
  });
  test('an accepted guess explains why it was kept', () => {
    const d = tokenDetails(tokens[0], [rejected, bonus], vocab)!;
    expect(d.draft?.accepted).toBe(true);
    expect(d.explanation).toContain('so the guess was kept');
  });
  test('an n-gram hit names its context length; a bonus token has no q', () => {
    expect(tokenDetails(tokens[2], [rejected, bonus], vocab)!.explanation).toContain('a 2-token match');
    const b = tokenDetails(tokens[4], [rejected, bonus], vocab)!;
    expect(b.q).toEqual([]);
    expect(b.draft).toBeNull();
    expect(b.p[0].text).toBe(' mat');
    expect(b.explanation).toContain('came for free');
  });
  test('whitespace is made visible', () => {
    expect(visibleToken(' the')).toBe('·the');
    expect(visibleToken('\n')).toBe('↵');
    expect(visibleToken('')).toBe('∅');
  });
});
