import { describe, expect, test } from 'vitest';
import type { AppInfo, Hardware } from '../../src/ipc';
import { memoryBudget, pairFit, pairMemoryBytes, recommendPair } from '../../src/lib/recommend';
import { catalogPairs } from '../../src/mock/data';

const GIB = 1024 ** 3;
const { pairs } = catalogPairs();
const find = (id: string) => pairs.find((p) => p.id === id)!;
const machine = (ramGiB: number, gpuGiB: number | null = null): Hardware => ({
  total_memory_bytes: ramGiB * GIB,
  available_memory_bytes: ramGiB * GIB * 0.7,
  cpu_cores: 8,
  gpus: gpuGiB ? [{ name: 'Test GPU', memory_bytes: gpuGiB * GIB }] : [],
  os: 'linux',
});

describe('memory and fit', () => {
  test('int8 needs much less memory than f32', () => {
    const pair = find('qwen2.5-0.5b-7b');
    expect(pairMemoryBytes(pair, 'int8')).toBeLessThan(pairMemoryBytes(pair, 'f32') / 2);
  });
  test('the budget is GPU memory only when the build can use the GPU', () => {
    expect(memoryBudget(machine(32, 24), ['cpu', 'cuda'])).toMatchObject({ device: 'gpu', bytes: 24 * GIB });
    expect(memoryBudget(machine(32, 24), ['cpu'])).toMatchObject({ device: 'ram', bytes: 32 * GIB });
  });
  test('verdicts come with a reason', () => {
    const small = pairFit(find('smollm2-135m-360m'), machine(8), ['cpu']);
    expect(small.verdict).toBe('fits');
    expect(small.reason).toMatch(/^Needs about .* fits in your 8 GB of RAM\.$/);
    const big = pairFit(find('qwen2.5-0.5b-7b'), machine(16), ['cpu']);
    expect(big.verdict).toBe('too_big');
    expect(big.reason).toContain('It fits with int8');
    const tight = pairFit(find('qwen2.5-0.5b-1.5b'), machine(12), ['cpu']);
    expect(tight.verdict).toBe('tight');
    expect(tight.reason).toContain('Turn on int8');
  });
});

describe('first-launch recommendation', () => {
  test('a small laptop gets the small SmolLM2 pair', () => {
    const rec = recommendPair(pairs, { hardware: machine(4), backends: ['cpu'] })!;
    expect(rec.pair.id).toBe('smollm2-135m-360m');
    expect(rec.fit.verdict).toBe('fits');
  });
  test('a 16 GB laptop gets the current Qwen3 pair, a bigger target that still runs well on a processor', () => {
    const rec = recommendPair(pairs, { hardware: machine(16), backends: ['cpu'] })!;
    expect(rec.pair.id).toBe('qwen3-0.6b-1.7b');
    // In f32 it would be a tight fit.
    expect(rec.precision).toBe('int8');
    expect(rec.fit.verdict).toBe('fits');
    expect(pairFit(rec.pair, machine(16), ['cpu'], 'f32').verdict).toBe('tight');
    expect(rec.reason).toContain('on the processor');
    // With twice the memory, in f32.
    const roomy = recommendPair(pairs, { hardware: machine(32), backends: ['cpu'] })!;
    expect([roomy.pair.id, roomy.precision]).toEqual(['qwen3-0.6b-1.7b', 'f32']);
  });
  test('a processor never gets a target above 2B, however much RAM', () => {
    const rec = recommendPair(pairs, { hardware: machine(256), backends: ['cpu'] })!;
    expect(rec.pair.target.params).toBeLessThanOrEqual(2e9);
  });
  test('a 24 GB GPU gets the Qwen3 8B target with int8; gated pairs are never suggested', () => {
    const rec = recommendPair(pairs, { hardware: machine(64, 24), backends: ['cpu', 'cuda'] })!;
    expect(rec.pair.id).toBe('qwen3-0.6b-8b');
    expect(rec.precision).toBe('int8');
    // An 80 GB GPU takes the largest current target, Qwen3 14B (with int8: in f32 it is a
    // tight fit); never the gated Gemma 3 27B.
    const huge = recommendPair(pairs, { hardware: machine(256, 80), backends: ['cpu', 'cuda'] })!;
    expect([huge.pair.id, huge.precision]).toEqual(['qwen3-0.6b-14b', 'int8']);
    expect(huge.pair.draft.gated || huge.pair.target.gated).toBe(false);
  });
  test('on any machine the suggestion is a catalog pair that needs no account and fits', () => {
    const machines: Array<Pick<AppInfo, 'hardware' | 'backends'>> = [
      ...[2, 4, 8, 12, 16, 24, 32, 64, 128].map((ram) => ({ hardware: machine(ram), backends: ['cpu' as const] })),
      ...[8, 12, 16, 24, 48, 80].map((gpu) => ({ hardware: machine(64, gpu), backends: ['cpu' as const, 'cuda' as const] })),
    ];
    for (const { hardware, backends } of machines) {
      const rec = recommendPair(pairs, { hardware, backends })!;
      const where = `${hardware.total_memory_bytes / GIB} GB RAM, GPU ${hardware.gpus[0]?.memory_bytes ?? 0}`;
      expect(pairs, where).toContain(rec.pair);
      expect(rec.pair.draft.gated || rec.pair.target.gated, where).toBe(false);
      expect(rec.fit.verdict, where).toBe('fits');
      if (!backends.includes('cuda')) expect(rec.pair.target.params, where).toBeLessThanOrEqual(2e9);
    }
  });
  test('with almost no memory it still suggests the smallest pair, with int8', () => {
    const rec = recommendPair(pairs, { hardware: machine(1), backends: ['cpu'] })!;
    expect(rec.pair.id).toBe('smollm2-135m-360m');
    expect(rec.precision).toBe('int8');
    expect(recommendPair([], { hardware: machine(8), backends: ['cpu'] })).toBeNull();
  });
});
