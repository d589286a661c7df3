// A deterministic stand-in for the engine: step traces with the structure real runs
// have (drafts with q and top-5, verified positions with p and top-5, acceptance that
// falls with the draft position, draft/verify timings), for the mocked UI and its tests.

import type {
  GammaChoice,
  GammaPolicy,
  GenerateRequest,
  GenerationSummary,
  Lane,
  ModeKind,
  StepRecord,
  StepTrace,
  TokenOrigin,
  TokenProb,
} from '../ipc';

export const REFERENCE_ANSWERS: Array<{ match: RegExp; text: string }> = [
  {
    match: /poem|haiku|verse/i,
    text:
      'Two minds at one desk:\nthe quick one guesses ahead,\nthe wise one checks each word.\n\n' +
      'Two minds at one desk,\nthe quick one guesses the words,\nthe wise one keeps the right ones.',
  },
  {
    match: /.*/,
    text:
      'Speculative decoding lets a small draft model guess the next few tokens, and the large target model ' +
      'checks all of those guesses in a single forward pass. Every guess the target agrees with is kept, and ' +
      "the first wrong one is replaced by the target's own token, so the answer is exactly what the large model " +
      'would have written on its own, only faster.\n\nBecause checking several tokens costs about as much as ' +
      'writing one, the speedup grows with the share of guesses that the target accepts: the more predictable ' +
      'the text, the bigger the gain.',
  },
];

const TOKEN_PATTERN = /\n|[ ]?[A-Za-z']+|[ ]?[0-9]+|[ ]?[^\sA-Za-z0-9]/g;

/** A small shared vocabulary: token text ↔ id. */
export class MockVocab {
  private ids = new Map<string, number>();
  readonly texts: string[] = [];

  constructor() {
    // Specials first, as real tokenizers have them.
    ['<|endoftext|>', '<|im_start|>', '<|im_end|>'].forEach((t) => this.id(t));
    const common =
      ' the, a, to, of, and, is, in, that, it, for, model, token, tokens, draft, target, guess, text, fast, one, two, words,' +
      ' small, big, large, each, word, then, so, can, will, more, check, checks, answer, next, same';
    common.split(',').forEach((t) => this.id(t));
    ['.', ',', ':', '\n', ' it', ' only', ' faster', ' model', ' slow', ' right', ' wrong'].forEach((t) => this.id(t));
  }

  id(text: string): number {
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.texts.length;
      this.ids.set(text, id);
      this.texts.push(text);
    }
    return id;
  }

  text(id: number): string {
    return this.texts[id] ?? '';
  }

  tokenize(text: string): number[] {
    return text
      .split(/(<\|[a-z_]+\|>)/)
      .flatMap((part) => (/^<\|[a-z_]+\|>$/.test(part) ? [part] : (part.match(TOKEN_PATTERN) ?? [])))
      .map((t) => this.id(t));
  }
}

/** mulberry32: small, fast and reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function referenceAnswer(prompt: string): string {
  return REFERENCE_ANSWERS.find((r) => r.match.test(prompt))!.text;
}

export interface SimulatedLane {
  lane: Lane;
  promptText: string;
  promptLen: number;
  steps: StepRecord[];
  summary: GenerationSummary;
  text: string;
}

interface LaneProfile {
  /** Acceptance at draft position 0 and its fall per position. */
  alpha0: number;
  alphaFall: number;
  draftMsPerToken: number;
  verifyMsBase: number;
  verifyMsPerToken: number;
}

const PROFILES: Record<Lane, LaneProfile> = {
  plain: { alpha0: 0, alphaFall: 0, draftMsPerToken: 0, verifyMsBase: 41, verifyMsPerToken: 0 },
  speculative: { alpha0: 0.86, alphaFall: 0.06, draftMsPerToken: 6.2, verifyMsBase: 44, verifyMsPerToken: 2.5 },
  nasd: { alpha0: 0.62, alphaFall: 0.09, draftMsPerToken: 0.12, verifyMsBase: 43, verifyMsPerToken: 2.5 },
};

function modeKind(lane: Lane, request: GenerateRequest): ModeKind {
  if (lane === 'plain') return 'Plain';
  if (lane === 'speculative') return 'Speculative';
  const m = request.mode.kind === 'nasd' ? request.mode : { ngram_n: 3, filler_top_k: null };
  return { Nasd: { ngram_n: m.ngram_n, filler_top_k: m.filler_top_k } };
}

function gammaFor(policy: GammaPolicy, lane: Lane, step: number, lastAllAccepted: boolean, prev: number, alphaEst: number): GammaChoice {
  if (lane === 'plain') return { gamma: 0, policy_gamma: 0, rule: 'Plain', alpha_estimate: null, cost_ratio: null };
  if ('Fixed' in policy) return { gamma: policy.Fixed, policy_gamma: policy.Fixed, rule: 'Fixed', alpha_estimate: null, cost_ratio: null };
  if ('Heuristic' in policy) {
    const { start, min, max } = policy.Heuristic;
    const g = step === 0 ? start : Math.min(max, Math.max(min, lastAllAccepted ? prev + 2 : prev - 1));
    return { gamma: g, policy_gamma: g, rule: 'Heuristic', alpha_estimate: null, cost_ratio: null };
  }
  if ('Confident' in policy) {
    const g = policy.Confident.max;
    return { gamma: g, policy_gamma: g, rule: 'Confident', alpha_estimate: null, cost_ratio: null };
  }
  const c = lane === 'nasd' ? 0.003 : 0.14;
  let best = 1;
  let bestValue = 0;
  for (let g = 1; g <= policy.Goodput.max; g++) {
    let tokens = 0;
    let power = 1;
    for (let i = 0; i <= g; i++) {
      tokens += power;
      power *= alphaEst;
    }
    const value = tokens / (g * c + 1);
    if (value > bestValue) [best, bestValue] = [g, value];
  }
  return { gamma: best, policy_gamma: best, rule: step < 3 ? 'GoodputPrior' : 'Goodput', alpha_estimate: alphaEst, cost_ratio: c };
}

/** The target's top-5 with `top` leading at probability `prob`. */
function topFive(vocab: MockVocab, top: number, prob: number, random: () => number, exclude: number[] = []): TokenProb[] {
  const out: TokenProb[] = [{ token: top, prob }];
  let rest = 1 - prob;
  const used = new Set([top, ...exclude]);
  while (out.length < 5) {
    const id = 3 + Math.floor(random() * Math.min(vocab.texts.length - 3, 60));
    if (used.has(id)) continue;
    used.add(id);
    const share = rest * (0.35 + random() * 0.3);
    out.push({ token: id, prob: share });
    rest -= share;
  }
  return out.sort((a, b) => b.prob - a.prob);
}

/** Simulates one lane of a greedy or sampled run over the reference answer. */
export function simulateLane(
  lane: Lane,
  request: GenerateRequest,
  vocab: MockVocab,
  options: { draftName?: string } = {},
): SimulatedLane {
  const profile = PROFILES[lane];
  const chatPrefix = request.chat ? '<|im_start|>user\n' : '';
  // As Qwen3's template: thinking turned off is an empty think block.
  const noThink = request.chat && request.enable_thinking === false ? '<think>\n\n</think>\n\n' : '';
  const chatSuffix = request.chat ? `<|im_end|>\n<|im_start|>assistant\n${noThink}` : '';
  const promptText = `${chatPrefix}${request.prompt}${chatSuffix}`;
  const promptLen = vocab.tokenize(promptText).length;
  const sampled = request.sampling.temperature > 0;
  // Sampling changes the words a little; greedy gives the same answer in every lane.
  let answerText = referenceAnswer(request.prompt);
  if (sampled) {
    const r = rng(request.sampling.seed + 17);
    answerText = answerText.replace(/\b(small|large|exactly|faster)\b/g, (w) => (r() < 0.5 ? w : ({ small: 'little', large: 'big', exactly: 'precisely', faster: 'quicker' } as Record<string, string>)[w]));
  }
  const reference = vocab.tokenize(answerText);
  const budget = Math.min(request.max_new_tokens, reference.length);
  const eos = 2;
  const random = rng(hashString(`${lane}|${request.prompt}|${request.sampling.seed}|${options.draftName ?? ''}`));

  const steps: StepRecord[] = [];
  let pos = 0;
  let elapsed = 8 + random() * 4; // prefill
  let ttft: number | null = null;
  let gamma = 0;
  let lastAll = false;
  let accSum = 0;
  let judgedSum = 0;
  while (pos < budget) {
    const alphaEst = judgedSum > 4 ? accSum / judgedSum : 0.7;
    const choice = gammaFor(request.gamma, lane, steps.length, lastAll, gamma, alphaEst);
    const remaining = budget - pos;
    if (choice.gamma > remaining - 1) {
      choice.gamma = Math.max(0, remaining - 1);
      if (lane !== 'plain') choice.rule = 'Budget';
    }
    gamma = choice.gamma;
    const trace: StepTrace = {
      step: steps.length,
      gamma: choice,
      drafts: [],
      verified: [],
      judged: 0,
      accepted: 0,
      final_token: null,
      emitted: [],
      retracted: 0,
      draft_ms: 0,
      verify_ms: 0,
      draft_forwards: 0,
      target_forwards: 1,
    };
    // NASD finds no n-gram now and then (the lookup runs dry): a plain step.
    let drafts = lane === 'nasd' && random() < 0.18 ? 0 : gamma;
    if (lane === 'nasd' && drafts > 0) drafts = Math.max(1, drafts - Math.floor(random() * 2));
    let rejectedAt = -1;
    for (let i = 0; i < drafts; i++) {
      const truth = reference[pos + i];
      const hard = /[,.:\n]/.test(vocab.text(truth)) ? 0.18 : 0;
      const accept = random() < profile.alpha0 - profile.alphaFall * i - hard;
      const drafted = accept ? truth : vocab.id([' the', ' a', ' model', ' it', ' words', ' guess', ' one'][Math.floor(random() * 7)]);
      const token = drafted === truth && !accept ? vocab.id(' slow') : drafted;
      const q = lane === 'nasd' ? 1 : accept ? 0.55 + random() * 0.4 : 0.3 + random() * 0.4;
      trace.drafts.push({
        token,
        q,
        q_top: lane === 'nasd' ? [{ token, prob: 1 }] : topFive(vocab, token, q, random),
        ngram_context_len: lane === 'nasd' ? 1 + Math.floor(random() * 2) : null,
      });
      if (!accept) {
        rejectedAt = i;
        break;
      }
      // The confidence rule: a guess the draft was unsure of ends the step's guesses.
      if ('Confident' in request.gamma && q < request.gamma.Confident.min_prob) break;
    }
    trace.judged = trace.drafts.length;
    trace.accepted = rejectedAt >= 0 ? rejectedAt : trace.drafts.length;
    for (let i = 0; i < trace.judged; i++) {
      const truth = reference[pos + i];
      const d = trace.drafts[i];
      const pTruth = 0.5 + random() * 0.45;
      const pTop = topFive(vocab, truth, pTruth, random, [d.token]);
      const pDraft = d.token === truth ? pTruth : 0.01 + random() * 0.12;
      if (d.token !== truth) pTop.splice(4, 1, { token: d.token, prob: pDraft });
      pTop.sort((a, b) => b.prob - a.prob);
      trace.verified.push({ index: promptLen + pos + i, p_draft: pDraft, p_top: pTop });
    }
    const acceptedOrigin: TokenOrigin = lane === 'nasd' ? 'NgramHit' : 'AcceptedDraft';
    for (let i = 0; i < trace.accepted; i++) trace.emitted.push({ token: reference[pos + i], origin: acceptedOrigin });
    const finalIndex = pos + trace.accepted;
    if (finalIndex < budget) {
      const truth = reference[finalIndex];
      const origin: TokenOrigin = trace.drafts.length === 0 ? 'Target' : rejectedAt >= 0 ? 'Corrected' : 'Bonus';
      if (rejectedAt < 0) {
        trace.verified.push({ index: promptLen + finalIndex, p_draft: null, p_top: topFive(vocab, truth, 0.45 + random() * 0.5, random) });
      }
      trace.final_token = { token: truth, origin };
      trace.emitted.push(trace.final_token);
    }
    trace.draft_forwards = lane === 'speculative' ? trace.drafts.length : 0;
    trace.draft_ms = trace.drafts.length * profile.draftMsPerToken * (0.85 + random() * 0.3);
    trace.verify_ms = (profile.verifyMsBase + profile.verifyMsPerToken * trace.drafts.length) * (0.9 + random() * 0.2);
    elapsed += trace.draft_ms + trace.verify_ms + 0.4;
    ttft ??= elapsed;
    accSum += trace.accepted;
    judgedSum += trace.judged;
    lastAll = trace.judged > 0 && trace.accepted === trace.judged;
    pos += trace.emitted.length;
    steps.push({
      trace,
      tokens: trace.emitted.map((e) => ({ id: e.token, text: vocab.text(e.token), origin: e.origin })),
      elapsed_ms: round(elapsed),
    });
  }
  // Greedy runs end with EOS once the answer is complete (it counts as a token).
  const hitEos = pos >= reference.length && request.max_new_tokens > reference.length;
  if (hitEos) {
    const last = steps[steps.length - 1];
    last.trace.emitted.push({ token: eos, origin: 'Target' });
    last.tokens.push({ id: eos, text: '', origin: 'Target' });
    pos += 1;
  }
  const text = steps.flatMap((s) => s.tokens.map((t) => t.text)).join('');
  const drafted = steps.reduce((n, s) => n + s.trace.judged, 0);
  const accepted = steps.reduce((n, s) => n + s.trace.accepted, 0);
  const byPosition: GenerationSummary['acceptance_by_position'] = [];
  for (const s of steps) {
    for (let i = 0; i < s.trace.judged; i++) {
      byPosition[i] ??= { drafted: 0, accepted: 0, rate: 0 };
      byPosition[i].drafted += 1;
      if (i < s.trace.accepted) byPosition[i].accepted += 1;
    }
  }
  byPosition.forEach((p) => (p.rate = p.accepted / p.drafted));
  const wall = elapsed + 1.5;
  const summary: GenerationSummary = {
    mode: modeKind(lane, request),
    prompt_len: promptLen,
    new_tokens: pos,
    steps: steps.length,
    drafted,
    accepted,
    alpha: drafted ? accepted / drafted : null,
    tau: pos / steps.length,
    acceptance_by_position: byPosition,
    target_forwards: steps.length,
    draft_forwards: steps.reduce((n, s) => n + s.trace.draft_forwards, 0),
    tokens_per_second: (pos / wall) * 1000,
    wall_ms: round(wall),
    time_to_first_token_ms: ttft === null ? null : round(ttft),
    draft_ms: round(steps.reduce((n, s) => n + s.trace.draft_ms, 0)),
    verify_ms: round(steps.reduce((n, s) => n + s.trace.verify_ms, 0)),
    cancelled: false,
    stop_reason: hitEos ? { Eos: { token: eos } } : 'MaxNewTokens',
  };
  return { lane, promptText, promptLen, steps, summary, text };
}

/** The token ids a step mentions, with their text: what a `step` event's `vocab` carries. */
export function stepVocab(step: StepTrace, vocab: MockVocab): Record<string, string> {
  const ids = new Set<number>();
  step.drafts.forEach((d) => {
    ids.add(d.token);
    d.q_top.forEach((t) => ids.add(t.token));
  });
  step.verified.forEach((v) => v.p_top.forEach((t) => ids.add(t.token)));
  step.emitted.forEach((e) => ids.add(e.token));
  return Object.fromEntries([...ids].map((id) => [String(id), vocab.text(id)]));
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
