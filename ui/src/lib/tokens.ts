// Token colouring and the per-token inspector: where each token came from, and what
// the target (p) and the draft (q) thought at its position.

import type { StepRecord, TokenOrigin, TokenProb } from '../ipc';

export interface OriginStyle {
  origin: TokenOrigin;
  /** CSS class; the colours live in styles/app.css (light and dark). */
  className: string;
  label: string;
  /** One plain sentence for the legend's tooltip. */
  description: string;
}

export const ORIGIN_STYLES: Record<TokenOrigin, OriginStyle> = {
  Target: {
    origin: 'Target',
    className: 'tok-target',
    label: 'Big model',
    description: 'Written by the big (target) model on its own, one token per step.',
  },
  AcceptedDraft: {
    origin: 'AcceptedDraft',
    className: 'tok-accepted',
    label: 'Accepted guess',
    description: "The small draft model guessed this token and the big model agreed: it came almost for free.",
  },
  Corrected: {
    origin: 'Corrected',
    className: 'tok-corrected',
    label: 'Corrected',
    description: "The big model rejected the draft's guess here and wrote its own token instead.",
  },
  Bonus: {
    origin: 'Bonus',
    className: 'tok-bonus',
    label: 'Bonus',
    description: 'Every guess of the step was accepted, so the big model added one more token for free.',
  },
  NgramHit: {
    origin: 'NgramHit',
    className: 'tok-ngram',
    label: 'N-gram hit',
    description: 'Guessed by repeating text already in the prompt or answer (NASD), and accepted.',
  },
};

/** The legend entries for a mode: plain shows only target tokens. */
export function legendFor(lanes: Array<'plain' | 'speculative' | 'nasd'>): OriginStyle[] {
  const origins = new Set<TokenOrigin>();
  for (const lane of lanes) {
    if (lane === 'plain') origins.add('Target');
    if (lane === 'speculative') ['AcceptedDraft', 'Corrected', 'Bonus'].forEach((o) => origins.add(o as TokenOrigin));
    if (lane === 'nasd') ['NgramHit', 'Corrected', 'Bonus'].forEach((o) => origins.add(o as TokenOrigin));
  }
  return (['AcceptedDraft', 'NgramHit', 'Corrected', 'Bonus', 'Target'] as TokenOrigin[])
    .filter((o) => origins.has(o))
    .map((o) => ORIGIN_STYLES[o]);
}

/** A token as displayed: its text, origin and where it sits in the trace. */
export interface TokenView {
  /** Position in the output (0-based). */
  index: number;
  id: number;
  text: string;
  origin: TokenOrigin;
  step: number;
  /** Position of the token within its step (0 = first token of the step). */
  offset: number;
}

/** Flattens steps into the displayed tokens, applying retractions (stop strings). */
export function flattenTokens(steps: StepRecord[]): TokenView[] {
  const out: TokenView[] = [];
  for (const [stepIndex, record] of steps.entries()) {
    const retracted = record.trace.retracted;
    if (retracted > 0) out.splice(Math.max(0, out.length - retracted), retracted);
    record.trace.emitted.forEach((emitted, offset) => {
      const text = record.tokens[offset]?.text ?? '';
      out.push({ index: 0, id: emitted.token, text, origin: emitted.origin, step: stepIndex, offset });
    });
  }
  out.forEach((t, i) => (t.index = i));
  return out;
}

/** Counts of each origin among the tokens. */
export function originCounts(tokens: Array<{ origin: TokenOrigin }>): Record<TokenOrigin, number> {
  const counts: Record<TokenOrigin, number> = { Target: 0, AcceptedDraft: 0, Corrected: 0, Bonus: 0, NgramHit: 0 };
  for (const t of tokens) counts[t.origin] += 1;
  return counts;
}

export interface ProbRow {
  id: number;
  text: string;
  prob: number;
  /** This row is the token that was emitted. */
  chosen: boolean;
  /** This row is the draft's guess at the position. */
  drafted: boolean;
}

export interface TokenDetails {
  token: TokenView;
  /** The target's top-5 at this position. */
  p: ProbRow[];
  /** The draft's top-5 at this position; empty when nothing was drafted here. */
  q: ProbRow[];
  /** The draft's guess at this position and its probabilities, when there was one. */
  draft: { id: number; text: string; q: number; p: number | null; accepted: boolean } | null;
  /** NASD: length of the n-gram context that proposed the guess. */
  ngramContext: number | null;
  /** A sentence saying what happened at this position. */
  explanation: string;
}

/** Everything the inspector shows for one token. */
export function tokenDetails(
  token: TokenView,
  steps: StepRecord[],
  vocab: Record<string, string>,
): TokenDetails | null {
  const record = steps[token.step];
  if (!record) return null;
  const trace = record.trace;
  const verify = trace.verified[token.offset];
  const draft = trace.drafts[token.offset];
  const text = (id: number) => vocab[String(id)] ?? `#${id}`;
  const judgedHere = token.offset < trace.judged && draft !== undefined;
  const rows = (list: TokenProb[] | undefined, draftId: number | null): ProbRow[] =>
    (list ?? []).map((tp) => ({
      id: tp.token,
      text: text(tp.token),
      prob: tp.prob,
      chosen: tp.token === token.id,
      drafted: draftId !== null && tp.token === draftId,
    }));
  const draftId = judgedHere ? draft.token : null;
  const details: TokenDetails = {
    token,
    p: rows(verify?.p_top, draftId),
    q: judgedHere ? rows(draft.q_top, draftId) : [],
    draft: judgedHere
      ? {
          id: draft.token,
          text: text(draft.token),
          q: draft.q,
          p: verify?.p_draft ?? null,
          accepted: token.offset < trace.accepted,
        }
      : null,
    ngramContext: judgedHere ? draft.ngram_context_len : null,
    explanation: '',
  };
  details.explanation = explain(details);
  return details;
}

function explain(d: TokenDetails): string {
  const pct = (x: number | null | undefined) => (x == null ? '?' : `${Math.round(x * 100)}%`);
  const shown = (s: string) => JSON.stringify(s);
  switch (d.token.origin) {
    case 'AcceptedDraft':
      return `The draft guessed ${shown(d.draft?.text ?? d.token.text)} (q = ${pct(d.draft?.q)}); the big model gave it p = ${pct(d.draft?.p)}, so the guess was kept.`;
    case 'NgramHit':
      return `Repeating earlier text (a ${d.ngramContext ?? '?'}-token match) guessed ${shown(d.token.text)}; the big model gave it p = ${pct(d.draft?.p)} and kept it.`;
    case 'Corrected':
      return d.draft
        ? `The guess ${shown(d.draft.text)} was rejected (p = ${pct(d.draft.p)} against q = ${pct(d.draft.q)}); the big model wrote ${shown(d.token.text)} instead.`
        : `The big model wrote ${shown(d.token.text)} after a rejected guess.`;
    case 'Bonus':
      return `Every guess of this step was accepted, so the big model's own next token ${shown(d.token.text)} came for free.`;
    case 'Target':
    default:
      return `The big model wrote ${shown(d.token.text)} on its own (p = ${pct(d.p.find((r) => r.chosen)?.prob)}).`;
  }
}

/** Makes whitespace and control characters visible in the inspector's token lists. */
export function visibleToken(text: string): string {
  if (text === '') return '∅';
  return text.replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/^ /, '·').replace(/ $/, '·');
}
