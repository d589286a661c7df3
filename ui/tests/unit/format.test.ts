import { describe, expect, test } from 'vitest';
import {
  ellipsize,
  formatBytes,
  formatEta,
  formatMemory,
  formatMs,
  formatParams,
  formatPercent,
  formatRate,
  formatSpeedup,
  formatTokensPerSecond,
  shortRepo,
} from '../../src/lib/format';

describe('format', () => {
  test('bytes in decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1536)).toBe('1.54 KB');
    expect(formatBytes(269_060_552)).toBe('269 MB');
    expect(formatBytes(3_087_467_144)).toBe('3.09 GB');
    expect(formatBytes(15_231_233_024)).toBe('15.2 GB');
    expect(formatBytes(null)).toBe('—');
  });
  test('memory in binary units, as the system reports it', () => {
    expect(formatMemory(16 * 1024 ** 3)).toBe('16 GB');
    expect(formatMemory(7.5 * 1024 ** 3)).toBe('7.5 GB');
    expect(formatMemory(512 * 1024 ** 2)).toBe('512 MB');
  });
  test('rates, ETAs and durations', () => {
    expect(formatRate(12_500_000)).toBe('12.5 MB/s');
    expect(formatEta(42)).toBe('42 s');
    expect(formatEta(185)).toBe('3 min 5 s');
    expect(formatEta(3720)).toBe('1 h 2 min');
    expect(formatEta(null)).toBe('—');
    expect(formatMs(0.25)).toBe('0.25 ms');
    expect(formatMs(850)).toBe('850 ms');
    expect(formatMs(2400)).toBe('2.4 s');
  });
  test('percent, speed, speedup, params', () => {
    expect(formatPercent(0.734)).toBe('73%');
    expect(formatPercent(null)).toBe('—');
    expect(formatTokensPerSecond(44.62)).toBe('44.6 tok/s');
    expect(formatTokensPerSecond(150.4)).toBe('150 tok/s');
    expect(formatSpeedup(2.049)).toBe('2.05×');
    expect(formatParams(1_543_714_304)).toBe('1.5B');
    expect(formatParams(134_515_008)).toBe('135M');
    expect(formatParams(8_030_261_248)).toBe('8B');
    expect(formatParams(999_885_952)).toBe('1B');
    expect(formatParams(999_400_000)).toBe('999M');
  });
  test('names and text', () => {
    expect(shortRepo('Qwen/Qwen2.5-0.5B-Instruct')).toBe('Qwen2.5-0.5B-Instruct');
    expect(shortRepo('local-folder')).toBe('local-folder');
    expect(ellipsize('a  b\n c', 10)).toBe('a b c');
    expect(ellipsize('abcdefghijkl', 5)).toBe('abcd…');
  });
});
