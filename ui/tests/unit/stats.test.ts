import { describe, expect, test } from 'vitest';
import type { GenerateRequest, GenerationSummary, StepRecord } from '../../src/ipc';
import { MockVocab, simulateLane } from '../../src/mock/simulate';
import {
  acceptanceByPosition,
  costRatio,
  expectedSpeedup,
  firstDifference,
  greedyVerdict,
  liveTokensPerSecond,
  meanGamma,
  predictSpeedup,
  verifyCost,
  speedups,
  stepSeries,
} from '../../src/lib/stats';

const request: GenerateRequest = {
  prompt: 'Explain speculative decoding in two sentences.',
  chat: true,
  mode: { kind: 'speculative' },
  sampling: { temperature: 0, top_k: null, top_p: null, seed: 7 },
  max_new_tokens: 160,
  gamma: { Fixed: 4 },
  stop_strings: [],
  ignore_eos: false,
};

describe('verify cost r', () => {
  test('by hand: the prefill step is left out, ms per target forward over plain ms per token', () => {
    const step = (verify_ms: number, target_forwards: number) =>
      ({ trace: { verify_ms, target_forwards } }) as unknown as StepRecord;
    // Steps 2 and 3: 300 ms over 2 forwards = 150 ms; plain at 10 tok/s = 100 ms a token.
    const steps = [step(5000, 1), step(140, 1), step(160, 1)];
    expect(verifyCost(steps, 10)).toBeCloseTo(1.5, 12);
    expect(verifyCost(steps, null)).toBeNull();
    expect(verifyCost([step(5000, 1)], 10)).toBeNull();
  });
});

describe('speedup formula (mirrors tandem_decode::expected_speedup)', () => {
  test('known values', () => {
    expect(expectedSpeedup(0, 4, 0)).toBe(1);
    expect(expectedSpeedup(1, 4, 0)).toBe(5);
    // (1 − 0.8^5) / (0.2 · (4·0.1 + 1))
    expect(expectedSpeedup(0.8, 4, 0.1)).toBeCloseTo((1 - 0.8 ** 5) / 0.2 / 1.4, 12);
    expect(expectedSpeedup(1.5, 2, 0)).toBe(3);
  });
});

describe('series from a run', () => {
  const vocab = new MockVocab();
  const spec = simulateLane('speculative', request, vocab);
  const plain = simulateLane('plain', request, vocab);

  test('per-step acceptance and timings', () => {
    const series = stepSeries(spec.steps);
    expect(series).toHaveLength(spec.steps.length);
    expect(series.every((p) => p.rate === null || (p.rate >= 0 && p.rate <= 1))).toBe(true);
    expect(stepSeries(plain.steps).every((p) => p.rate === null && p.draftMs === 0)).toBe(true);
  });
  test('acceptance by position from the steps matches the summary', () => {
    expect(acceptanceByPosition(spec.steps)).toEqual(spec.summary.acceptance_by_position);
  });
  test('live speed, cost ratio and γ', () => {
    const tps = liveTokensPerSecond(spec.steps)!;
    expect(tps).toBeGreaterThan(0);
    const c = costRatio(spec.steps)!;
    expect(c).toBeGreaterThan(0.05);
    expect(c).toBeLessThan(0.3);
    expect(costRatio(plain.steps)).toBe(0);
    expect(meanGamma(spec.steps)).toBeLessThanOrEqual(4);
    expect(meanGamma(plain.steps)).toBeNull();
  });
  test('predicted vs measured speedup', () => {
    const p = predictSpeedup(spec, plain.summary.tokens_per_second)!;
    expect(p.predicted).toBeGreaterThan(1);
    expect(p.measured).toBeCloseTo(spec.summary.tokens_per_second / plain.summary.tokens_per_second);
    // With a plain lane the prediction is divided by the verify cost r it measures.
    expect(p.r).not.toBeNull();
    expect(p.predicted * p.r!).toBeCloseTo(predictSpeedup(spec, null)!.predicted, 9);
    expect(predictSpeedup(spec, null)!.measured).toBeNull();
    expect(predictSpeedup(spec, null)!.r).toBeNull();
    expect(predictSpeedup(plain, null)).toBeNull();
  });
  test('greedy lanes give identical text; speedups are over plain', () => {
    const nasd = simulateLane('nasd', { ...request, mode: { kind: 'nasd', ngram_n: 3, filler_top_k: null } }, vocab);
    const out = (lane: 'plain' | 'speculative' | 'nasd', text: string) => ({ lane, text, cancelled: false });
    expect(greedyVerdict([out('plain', plain.text), out('speculative', spec.text), out('nasd', nasd.text)], 0, true)).toBe('identical');
    expect(greedyVerdict([out('plain', plain.text), out('speculative', spec.text + 'x')], 0, true)).toBe('different');
    expect(greedyVerdict([out('plain', plain.text), out('speculative', spec.text)], 0.7, true)).toBeNull();
    const s = speedups({ plain: plain.summary, speculative: spec.summary } as Record<string, GenerationSummary>);
    expect(s.plain).toBe(1);
    expect(s.speculative).toBeGreaterThan(1.2);
    expect(speedups({ speculative: spec.summary })).toEqual({});
    expect(firstDifference('abc', 'abd')).toBe(2);
    expect(firstDifference('abc', 'abc')).toBe(-1);
    expect(firstDifference('ab', 'abc')).toBe(2);
  });
  test('the greedy verdict: identical only when every lane ran to its end', () => {
    const lane = (l: 'plain' | 'speculative' | 'nasd', text: string, cancelled = false) => ({ lane: l, text, cancelled });
    expect(greedyVerdict([lane('plain', 'abc'), lane('speculative', 'abc')], 0, true)).toBe('identical');
    expect(greedyVerdict([lane('plain', 'abc'), lane('speculative', 'abd')], 0, true)).toBe('different');
    // Cancelled: a prefix of plain's text proves nothing about the rest…
    expect(greedyVerdict([lane('plain', 'abc'), lane('speculative', 'ab', true)], 0, true)).toBe('incomplete');
    // …but a difference within it is still a difference.
    expect(greedyVerdict([lane('plain', 'abc'), lane('speculative', 'xb', true)], 0, true)).toBe('different');
    // Plain alone, or a lane that never ran.
    expect(greedyVerdict([lane('plain', 'abc')], 0, true)).toBe('incomplete');
    expect(greedyVerdict([lane('plain', 'abc'), lane('speculative', 'abc')], 0, false)).toBe('incomplete');
    expect(greedyVerdict([lane('plain', 'abc'), lane('speculative', 'x')], 0.7, true)).toBeNull();
    expect(greedyVerdict([lane('speculative', 'abc'), lane('nasd', 'abc')], 0, true)).toBeNull();
  });
});
