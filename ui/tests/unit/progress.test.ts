import { describe, expect, test } from 'vitest';
import type { GenerationSummary, RunEvent } from '../../src/ipc';
import { applyDownloadEvent, applyRunEvent, downloadFraction, laneTokenCount, newDownload, type LaneState } from '../../src/lib/progress';

describe('download progress', () => {
  test('events drive status, bytes, speed and ETA', () => {
    const d = newDownload('a/b');
    applyDownloadEvent(d, {
      type: 'started',
      repo: 'a/b',
      revision: 'main',
      commit: 'c',
      files: [],
      total_bytes: 1000,
      cached_bytes: 100,
    });
    expect(d).toMatchObject({ status: 'downloading', done: 100, total: 1000 });
    applyDownloadEvent(d, {
      type: 'progress',
      file: 'model.safetensors',
      file_done: 400,
      file_total: 900,
      done: 500,
      total: 1000,
      bytes_per_sec: 50,
      eta_secs: 10,
    });
    expect(downloadFraction(d)).toBe(0.5);
    expect(d).toMatchObject({ bytesPerSec: 50, etaSecs: 10, file: 'model.safetensors' });
    applyDownloadEvent(d, { type: 'retrying', file: 'x', attempt: 2, from_offset: 400, reason: 'reset' });
    expect(d.status).toBe('retrying');
    expect(d.note).toContain('attempt 2');
    applyDownloadEvent(d, { type: 'cancelled', file: 'x', file_done: 400 });
    expect(d).toMatchObject({ status: 'paused', bytesPerSec: 0, etaSecs: null });
    applyDownloadEvent(d, { type: 'done', repo: 'a/b', commit: 'c', snapshot_dir: '/s', downloaded_bytes: 900, elapsed_secs: 3 });
    expect(d.status).toBe('done');
    expect(downloadFraction(d)).toBe(1);
    expect(downloadFraction({ done: 5, total: 0 })).toBe(0);
  });
});

describe('run lanes', () => {
  test('started, steps and finished fold into a lane', () => {
    const lanes: Partial<Record<'plain' | 'speculative' | 'nasd', LaneState>> = {};
    const started: RunEvent = { type: 'started', run_id: 'r1', lane: 'plain', prompt_text: 'hi', prompt_len: 1, max_new_tokens: 5 };
    applyRunEvent(lanes, started);
    expect(lanes.plain).toMatchObject({ status: 'running', runId: 'r1' });
    applyRunEvent(lanes, {
      type: 'step',
      lane: 'plain',
      vocab: { '5': ' yo' },
      step: {
        trace: {
          step: 0,
          gamma: { gamma: 0, policy_gamma: 0, rule: 'Plain', alpha_estimate: null, cost_ratio: null },
          drafts: [],
          verified: [],
          judged: 0,
          accepted: 0,
          final_token: { token: 5, origin: 'Target' },
          emitted: [{ token: 5, origin: 'Target' }],
          retracted: 0,
          draft_ms: 0,
          verify_ms: 30,
          draft_forwards: 0,
          target_forwards: 1,
        },
        tokens: [{ id: 5, text: ' yo', origin: 'Target' }],
        elapsed_ms: 31,
      },
    });
    expect(laneTokenCount(lanes.plain!)).toBe(1);
    expect(lanes.plain!.vocab['5']).toBe(' yo');
    const summary = { cancelled: true } as GenerationSummary;
    applyRunEvent(lanes, { type: 'finished', lane: 'plain', summary, text: ' yo', tail: null });
    expect(lanes.plain).toMatchObject({ status: 'cancelled', text: ' yo' });
  });
});
