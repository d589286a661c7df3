// Numbers the Insights and Compare views derive from step traces and summaries.

import type { GenerationSummary, GreedyVerdict, Lane, PositionAcceptance, RunRecord, StepRecord } from '../ipc';

/**
 * Expected tokens per unit of target time for γ drafts at acceptance α when one draft
 * forward costs c target forwards: (1 − α^(γ+1)) / ((1 − α)(γc + 1)). Mirrors
 * tandem_decode::expected_speedup (summed as a geometric series, exact at α = 1).
 */
export function expectedSpeedup(alpha: number, gamma: number, c: number): number {
  const a = Math.min(1, Math.max(0, alpha));
  let tokens = 0;
  let power = 1;
  for (let i = 0; i <= gamma; i++) {
    tokens += power;
    power *= a;
  }
  return tokens / (gamma * c + 1);
}

export interface StepPoint {
  step: number;
  gamma: number;
  judged: number;
  accepted: number;
  /** accepted / judged; null for steps that drafted nothing. */
  rate: number | null;
  emitted: number;
  draftMs: number;
  verifyMs: number;
  elapsedMs: number;
}

export function stepSeries(steps: StepRecord[]): StepPoint[] {
  return steps.map((s, i) => ({
    step: i,
    gamma: s.trace.gamma.gamma,
    judged: s.trace.judged,
    accepted: s.trace.accepted,
    rate: s.trace.judged > 0 ? s.trace.accepted / s.trace.judged : null,
    emitted: s.trace.emitted.length,
    draftMs: s.trace.draft_ms,
    verifyMs: s.trace.verify_ms,
    elapsedMs: s.elapsed_ms,
  }));
}

/** Acceptance by draft position, from the steps (for a live run without a summary yet). */
export function acceptanceByPosition(steps: StepRecord[]): PositionAcceptance[] {
  const out: PositionAcceptance[] = [];
  for (const s of steps) {
    for (let i = 0; i < s.trace.judged; i++) {
      out[i] ??= { drafted: 0, accepted: 0, rate: 0 };
      out[i].drafted += 1;
      if (i < s.trace.accepted) out[i].accepted += 1;
    }
  }
  for (const p of out) p.rate = p.drafted ? p.accepted / p.drafted : 0;
  return out;
}

/** Tokens per second so far: emitted tokens over the last step's end time. */
export function liveTokensPerSecond(steps: StepRecord[]): number | null {
  const last = steps[steps.length - 1];
  if (!last || last.elapsed_ms <= 0) return null;
  const tokens = steps.reduce((n, s) => n + s.trace.emitted.length - s.trace.retracted, 0);
  return (tokens / last.elapsed_ms) * 1000;
}

/** Draft cost relative to the target: mean ms per draft forward ÷ mean ms per target forward. */
export function costRatio(steps: StepRecord[]): number | null {
  let draftMs = 0;
  let draftForwards = 0;
  let verifyMs = 0;
  let targetForwards = 0;
  for (const s of steps) {
    draftMs += s.trace.draft_ms;
    draftForwards += s.trace.draft_forwards;
    verifyMs += s.trace.verify_ms;
    targetForwards += s.trace.target_forwards;
  }
  if (targetForwards === 0 || verifyMs <= 0) return null;
  if (draftForwards === 0) return 0;
  return draftMs / draftForwards / (verifyMs / targetForwards);
}

export function meanGamma(steps: StepRecord[]): number | null {
  const drafting = steps.filter((s) => s.trace.gamma.gamma > 0);
  if (!drafting.length) return null;
  return drafting.reduce((n, s) => n + s.trace.gamma.gamma, 0) / drafting.length;
}

/**
 * What a verify pass of this run cost relative to one plain decoding step: mean ms per
 * target forward (the first step, which holds the prompt's prefill, left out) over the
 * plain lane's ms per token. Checking γ + 1 tokens at once is not free on a CPU.
 */
export function verifyCost(steps: StepRecord[], plainTokensPerSecond: number | null): number | null {
  if (!plainTokensPerSecond) return null;
  const rest = steps.slice(1);
  const verifyMs = rest.reduce((n, s) => n + s.trace.verify_ms, 0);
  const forwards = rest.reduce((n, s) => n + s.trace.target_forwards, 0);
  if (forwards === 0 || verifyMs <= 0) return null;
  return verifyMs / forwards / (1000 / plainTokensPerSecond);
}

export interface Prediction {
  alpha: number;
  gamma: number;
  c: number;
  /** Verify-pass cost over a plain step ([`verifyCost`]); null without a plain lane. */
  r: number | null;
  /** What the formula predicts from the measured α, γ, c and r. */
  predicted: number;
  /** The real speedup over plain, when a plain run to compare with exists. */
  measured: number | null;
}

/**
 * The speedup the formula predicts for a run, from its own α, mean γ and cost ratio c
 * (draft forward over verify pass), divided by the verify cost r when the plain
 * baseline is known: (1 − α^(γ+1)) / ((1 − α)(γc + 1)) / r, the same as
 * `tandem predict`'s (1 − α^(γ+1)) / ((1 − α)(γc' + r)) with c' = c·r. Next to it the
 * measured speedup.
 */
export function predictSpeedup(run: Pick<RunRecord, 'steps' | 'summary'>, plainTokensPerSecond: number | null): Prediction | null {
  const alpha = run.summary.alpha;
  const gamma = meanGamma(run.steps);
  const c = costRatio(run.steps);
  if (alpha == null || gamma == null || c == null) return null;
  const g = Math.max(1, Math.round(gamma));
  const r = verifyCost(run.steps, plainTokensPerSecond);
  return {
    alpha,
    gamma,
    c,
    r,
    predicted: expectedSpeedup(alpha, g, c) / (r ?? 1),
    measured: plainTokensPerSecond ? run.summary.tokens_per_second / plainTokensPerSecond : null,
  };
}

/** Each lane's tokens/s over the plain lane's. */
export function speedups(summaries: Partial<Record<Lane, GenerationSummary>>): Partial<Record<Lane, number>> {
  const base = summaries.plain?.tokens_per_second;
  const out: Partial<Record<Lane, number>> = {};
  if (!base) return out;
  for (const [lane, s] of Object.entries(summaries) as Array<[Lane, GenerationSummary]>) {
    out[lane] = s.tokens_per_second / base;
  }
  return out;
}

/** One lane's output, for the greedy check. */
export interface LaneOutput {
  lane: Lane;
  text: string;
  /** The lane stopped early: its text is a prefix of what it would have written. */
  cancelled: boolean;
}

/**
 * The greedy exactness check as the engine makes it (`greedy_check`), on text. Every
 * lane must write plain's text; a cancelled lane (or a cancelled plain) is compared
 * only as far as both went, so it can prove a difference but never sameness: the race
 * is then `incomplete`, as it is with plain alone or when a lane never ran (`allRan`
 * false). Null when sampling makes the check meaningless, or without a plain lane.
 */
export function greedyVerdict(lanes: LaneOutput[], temperature: number, allRan: boolean): GreedyVerdict | null {
  const plain = lanes.find((l) => l.lane === 'plain');
  if (temperature > 0 || !plain) return null;
  const others = lanes.filter((l) => l !== plain);
  let incomplete = !allRan || others.length === 0;
  for (const l of others) {
    if (l.cancelled || plain.cancelled) {
      const n = Math.min(l.text.length, plain.text.length);
      if (l.text.slice(0, n) !== plain.text.slice(0, n)) return 'different';
      incomplete = true;
    } else if (l.text !== plain.text) {
      return 'different';
    }
  }
  return incomplete ? 'incomplete' : 'identical';
}

/** The first character where two texts differ, or -1. */
export function firstDifference(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
