// Scales and shapes for the SVG charts. Pure functions: the components only draw.

export interface Scale {
  (value: number): number;
  domain: [number, number];
  range: [number, number];
}

/** Maps [d0, d1] linearly onto [r0, r1]; a zero-width domain maps to the range's start. */
export function linearScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const scale = ((value: number) => (span === 0 ? r0 : r0 + ((value - d0) / span) * (r1 - r0))) as Scale;
  scale.domain = domain;
  scale.range = range;
  return scale;
}

/** A step of 1, 2 or 5 × 10^k giving about `count` ticks over the span. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || count < 1) return 1;
  const raw = span / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** Round tick values covering [min, max], e.g. (0, 37, 4) → [0, 10, 20, 30, 40]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0];
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    if (max === 0) return [0, 1];
    min = Math.min(0, min);
    max = Math.max(0, max);
  }
  const step = niceStep(max - min, count);
  const start = Math.floor(min / step) * step;
  const end = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= end + step / 2; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

/** The domain a chart of these values should use: from 0 (or below) to a nice top. */
export function niceDomain(values: number[], count = 5): [number, number] {
  const finite = values.filter(Number.isFinite);
  const max = finite.length ? Math.max(0, ...finite) : 1;
  const min = finite.length ? Math.min(0, ...finite) : 0;
  const ticks = niceTicks(min, max === min ? min + 1 : max, count);
  return [ticks[0], ticks[ticks.length - 1]];
}

export interface Band {
  x: number;
  width: number;
}

/** `n` equal bands over [x0, x1], `padding` (0..1) of each band left empty. */
export function bands(n: number, x0: number, x1: number, padding = 0.2): Band[] {
  if (n <= 0) return [];
  const step = (x1 - x0) / n;
  const width = Math.max(step * (1 - padding), Math.min(1, step));
  return Array.from({ length: n }, (_, i) => ({ x: x0 + i * step + (step - width) / 2, width }));
}

/** An SVG path through the points, skipping non-finite values (a gap in the line). */
export function linePath(points: Array<[number, number]>): string {
  let d = '';
  let pen = false;
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${round(x)},${round(y)}`;
    pen = true;
  }
  return d;
}

/** Keeps at most `max` evenly spaced indices of `n` (for axis labels of long series). */
export function thinIndices(n: number, max: number): number[] {
  if (n <= 0) return [];
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const step = Math.ceil(n / max);
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

/** Moving average over a window (shorter at the start). */
export function movingAverage(values: number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= window) sum -= values[i - window];
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
