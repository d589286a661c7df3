import { describe, expect, test } from 'vitest';
import { bands, linePath, linearScale, movingAverage, niceDomain, niceStep, niceTicks, thinIndices } from '../../src/lib/chart';

describe('chart scaling', () => {
  test('linear scale maps the domain onto the range, inverted axes included', () => {
    const y = linearScale([0, 100], [200, 0]);
    expect(y(0)).toBe(200);
    expect(y(50)).toBe(100);
    expect(y(100)).toBe(0);
    expect(linearScale([5, 5], [0, 10])(5)).toBe(0);
  });
  test('nice steps are 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(37, 4)).toBe(10);
    expect(niceStep(1, 4)).toBe(0.5);
    expect(niceStep(0.9, 5)).toBe(0.2);
    expect(niceStep(0, 5)).toBe(1);
  });
  test('nice ticks cover the data', () => {
    expect(niceTicks(0, 37, 4)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(0, 1, 4)).toEqual([0, 0.5, 1]);
    expect(niceTicks(0, 0)).toEqual([0, 1]);
    expect(niceTicks(7, 7)).toEqual([0, 2, 4, 6, 8]);
  });
  test('nice domain starts at zero and ends on a round number', () => {
    expect(niceDomain([12, 48, 97])).toEqual([0, 100]);
    expect(niceDomain([])).toEqual([0, 1]);
    expect(niceDomain([-3, 4])).toEqual([-4, 4]);
  });
  test('bands split the width evenly with padding', () => {
    const b = bands(4, 0, 100, 0.2);
    expect(b).toHaveLength(4);
    expect(b[0].width).toBeCloseTo(20);
    expect(b[1].x - b[0].x).toBeCloseTo(25);
    expect(bands(0, 0, 100)).toEqual([]);
  });
  test('line paths skip gaps', () => {
    expect(linePath([[0, 0], [1, 2]])).toBe('M0,0L1,2');
    expect(linePath([[0, 0], [1, NaN], [2, 2], [3, 3]])).toBe('M0,0M2,2L3,3');
  });
  test('thinned axis labels and moving averages', () => {
    expect(thinIndices(5, 10)).toEqual([0, 1, 2, 3, 4]);
    expect(thinIndices(100, 10)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(movingAverage([2, 4, 6, 8], 2)).toEqual([2, 3, 5, 7]);
  });
});
