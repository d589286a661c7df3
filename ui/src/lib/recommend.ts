// Which catalog pairs fit this computer, and which one to suggest on a first launch.

import type { AppInfo, Hardware, Pair, Precision } from '../ipc';
import { formatMemory, formatParams } from './format';

/** Bytes per parameter once loaded: weights are widened to f32; int8 keeps embeddings in f32. */
const BYTES_PER_PARAM: Record<Precision, number> = { f32: 4, int8: 1.5 };
/** KV caches, activations and the runtime, on top of the weights. */
const OVERHEAD_FRACTION = 0.15;
const OVERHEAD_BYTES = 300e6;
/** Share of the memory a pair may use and still leave the computer comfortable. */
const COMFORTABLE = 0.6;
/** Share beyond which it will not run well at all. */
const MAXIMUM = 0.85;
/** On a processor, bigger targets answer too slowly for a first try. */
const CPU_FIRST_TRY_MAX_TARGET_PARAMS = 2e9;

export type FitVerdict = 'fits' | 'tight' | 'too_big';

export interface Fit {
  verdict: FitVerdict;
  /** Estimated bytes the pair needs loaded. */
  needed_bytes: number;
  /** Memory it is measured against. */
  budget_bytes: number;
  device: 'gpu' | 'ram';
  /** One sentence with the reason. */
  reason: string;
}

/** Estimated memory a pair needs loaded at this precision. */
export function pairMemoryBytes(pair: Pair, precision: Precision): number {
  const params = pair.draft.params + pair.target.params;
  const weights = params * BYTES_PER_PARAM[precision];
  return Math.round(weights * (1 + OVERHEAD_FRACTION) + OVERHEAD_BYTES);
}

/** The memory models run in: the largest GPU's when the build can use it, else RAM. */
export function memoryBudget(hardware: Hardware, backends: AppInfo['backends']): { bytes: number; device: 'gpu' | 'ram'; name: string } {
  const gpu = [...hardware.gpus].sort((a, b) => b.memory_bytes - a.memory_bytes)[0];
  if (gpu && backends.includes('cuda')) {
    return { bytes: gpu.memory_bytes, device: 'gpu', name: `${gpu.name} (${formatMemory(gpu.memory_bytes)})` };
  }
  return { bytes: hardware.total_memory_bytes, device: 'ram', name: `${formatMemory(hardware.total_memory_bytes)} of RAM` };
}

/** Whether a pair fits, with a sentence saying why. */
export function pairFit(pair: Pair, hardware: Hardware, backends: AppInfo['backends'], precision: Precision = 'f32'): Fit {
  const budget = memoryBudget(hardware, backends);
  const needed = pairMemoryBytes(pair, precision);
  const share = budget.bytes > 0 ? needed / budget.bytes : Infinity;
  const where = budget.device === 'gpu' ? `your GPU's ${formatMemory(budget.bytes)}` : `your ${formatMemory(budget.bytes)} of RAM`;
  const needs = `Needs about ${formatMemory(needed)}${precision === 'int8' ? ' with int8' : ''}`;
  if (share <= COMFORTABLE) {
    return { verdict: 'fits', needed_bytes: needed, budget_bytes: budget.bytes, device: budget.device, reason: `${needs}: fits in ${where}.` };
  }
  if (share <= MAXIMUM) {
    const hint = precision === 'f32' ? ' Turn on int8 to need much less.' : ' Close other programs first.';
    return {
      verdict: 'tight',
      needed_bytes: needed,
      budget_bytes: budget.bytes,
      device: budget.device,
      reason: `${needs}: a tight fit in ${where}.${hint}`,
    };
  }
  const hint = precision === 'f32' && pairMemoryBytes(pair, 'int8') <= budget.bytes * MAXIMUM ? ' It fits with int8.' : '';
  return {
    verdict: 'too_big',
    needed_bytes: needed,
    budget_bytes: budget.bytes,
    device: budget.device,
    reason: `${needs}: more than ${where} can hold.${hint}`,
  };
}

export interface Recommendation {
  pair: Pair;
  precision: Precision;
  fit: Fit;
  /** Why this pair, for the first-launch card. */
  reason: string;
}

/**
 * The pair to suggest on a first launch: not gated (no account needed), fitting
 * comfortably, and the largest target that still answers quickly on this hardware.
 * int8 counts when it lets a bigger target fit; with nothing fitting, the smallest pair.
 */
export function recommendPair(pairs: Pair[], info: Pick<AppInfo, 'hardware' | 'backends'>): Recommendation | null {
  if (pairs.length === 0) return null;
  const budget = memoryBudget(info.hardware, info.backends);
  const open = pairs.filter((p) => !p.draft.gated && !p.target.gated);
  const pool = open.length ? open : pairs;
  const capped = (p: Pair) => budget.device === 'gpu' || p.target.params <= CPU_FIRST_TRY_MAX_TARGET_PARAMS;
  const candidates = (['f32', 'int8'] as Precision[])
    .flatMap((precision) =>
      pool.filter(capped).map((pair) => ({ pair, precision, fit: pairFit(pair, info.hardware, info.backends, precision) })),
    )
    .filter((c) => c.fit.verdict === 'fits')
    // Largest target first; then f32 over int8 (exact weights), then the cheaper draft.
    .sort(
      (a, b) =>
        b.pair.target.params - a.pair.target.params ||
        Number(a.precision === 'int8') - Number(b.precision === 'int8') ||
        a.pair.draft.params - b.pair.draft.params,
    );
  const best = candidates[0];
  if (best) return { ...best, reason: recommendationReason(best.pair, budget, best.precision) };
  const smallest = [...pool].sort((a, b) => a.target.params - b.target.params)[0];
  const fit = pairFit(smallest, info.hardware, info.backends, 'int8');
  return {
    pair: smallest,
    precision: 'int8',
    fit,
    reason: `The smallest pair, with int8. ${fit.reason}`,
  };
}

function recommendationReason(pair: Pair, budget: { device: 'gpu' | 'ram'; name: string }, precision: Precision): string {
  const size = `${formatParams(pair.draft.params)} draft + ${formatParams(pair.target.params)} target`;
  const where = budget.device === 'gpu' ? `your ${budget.name}` : `${budget.name} on the processor`;
  const int8 = precision === 'int8' ? ' with int8' : '';
  return `${size}: runs comfortably in ${where}${int8}, and needs no account to download.`;
}
