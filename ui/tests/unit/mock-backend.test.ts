// @vitest-environment happy-dom
// The mocked backend answers every command of the IPC contract through the real
// `api` wrappers and @tauri-apps/api/mocks, channels included.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { api, Channel, COMMANDS, type DownloadEvent, type RunEvent } from '../../src/ipc';
import { MockBackend } from '../../src/mock/backend';

let backend: MockBackend;

beforeEach(() => {
  backend = new MockBackend({ scenario: 'ready', speed: 0, downloadRate: 5e9 });
  mockIPC((cmd, args) => backend.handle(cmd, (args ?? {}) as Record<string, unknown>));
});
afterEach(() => clearMocks());

describe('mocked IPC', () => {
  test('the mock implements every command of the contract', async () => {
    for (const cmd of COMMANDS) {
      await backend.handle(cmd, {}).catch((e: { message?: string }) => {
        expect(e.message ?? '').not.toContain('unknown command');
      });
    }
  });

  test('app info, catalog and local models', async () => {
    const info = await api.appInfo();
    expect(info.backends).toEqual(['cpu']);
    const catalog = await api.catalog();
    expect(catalog.pairs.length).toBe(17);
    expect(catalog.pairs.map((p) => p.id)).toEqual(expect.arrayContaining(['qwen3-0.6b-1.7b', 'gemma3-270m-1b', 'gemma3-1b-27b']));
    const local = await api.localModels();
    expect(local.models.find((m) => m.repo_id === 'Qwen/Qwen2.5-1.5B-Instruct')?.complete).toBe(false);
  });

  test('a download streams progress on its channel, in order', async () => {
    const events: DownloadEvent[] = [];
    const channel = new Channel<DownloadEvent>();
    channel.onmessage = (e) => events.push(e);
    const done = await api.downloadModel('Qwen/Qwen2.5-3B-Instruct', channel);
    expect(done.snapshot_dir).toContain('models--Qwen--Qwen2.5-3B-Instruct');
    expect(events[0].type).toBe('started');
    expect(events.some((e) => e.type === 'progress')).toBe(true);
    expect(events.at(-1)?.type).toBe('done');
  });

  test('a gated model without a token rejects with a code', async () => {
    await expect(api.downloadModel('meta-llama/Llama-3.2-1B-Instruct', new Channel())).rejects.toMatchObject({ code: 'gated' });
    await api.setHubToken('hf_x');
    expect((await api.appInfo()).has_token).toBe(true);
  });

  test('a run needs a loaded pair, then streams started, steps and finished', async () => {
    const request = {
      prompt: 'Explain speculative decoding in two sentences.',
      chat: true,
      mode: { kind: 'speculative' as const },
      sampling: { temperature: 0, top_k: null, top_p: null, seed: 1 },
      max_new_tokens: 64,
      gamma: { Fixed: 4 },
      stop_strings: [],
      ignore_eos: false,
    };
    await expect(api.startRun(request, new Channel())).rejects.toMatchObject({ code: 'no_model_loaded' });
    await api.loadPair({
      target: 'HuggingFaceTB/SmolLM2-360M-Instruct',
      draft: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      precision: 'f32',
      backend: 'cpu',
    });
    const events: RunEvent[] = [];
    const channel = new Channel<RunEvent>();
    channel.onmessage = (e) => events.push(e);
    const record = await api.startRun(request, channel);
    expect(events[0].type).toBe('started');
    expect(events.at(-1)?.type).toBe('finished');
    expect(events.filter((e) => e.type === 'step')).toHaveLength(record.steps.length);
    expect(record.summary.new_tokens).toBe(64);
    expect((await api.listHistory())[0].id).toBe(record.id);
    expect(await api.exportLog(record.id, 'jsonl')).toMatch(/\.jsonl$/);
  });
});

describe('the greedy check of a race', () => {
  const request = {
    prompt: 'Explain speculative decoding in two sentences.',
    chat: true,
    mode: { kind: 'speculative' as const },
    sampling: { temperature: 0, top_k: null, top_p: null, seed: 1 },
    max_new_tokens: 48,
    gamma: { Fixed: 4 },
    stop_strings: [],
    ignore_eos: false,
  };
  async function load() {
    await api.loadPair({
      target: 'HuggingFaceTB/SmolLM2-360M-Instruct',
      draft: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      precision: 'f32',
      backend: 'cpu',
    });
  }

  test('a race run to its end is identical', async () => {
    await load();
    const record = await api.startCompare({ request, lanes: ['plain', 'speculative'] }, new Channel());
    expect(record.greedy).toBe('identical');
  });

  test('a race cancelled before every lane finished is incomplete, not identical', async () => {
    backend = new MockBackend({ scenario: 'ready', speed: 0.2, downloadRate: 5e9 });
    mockIPC((cmd, args) => backend.handle(cmd, (args ?? {}) as Record<string, unknown>));
    await load();
    const channel = new Channel<RunEvent>();
    let steps = 0;
    channel.onmessage = (e) => {
      // Cancel a few steps into the speculative lane: plain has finished, speculative has not.
      if (e.type === 'step' && e.lane === 'speculative' && ++steps === 3) void api.cancelRun();
    };
    const record = await api.startCompare({ request, lanes: ['plain', 'speculative', 'nasd'] }, channel);
    expect(record.runs.find((r) => r.lane === 'speculative')?.summary.cancelled).toBe(true);
    expect(record.greedy).toBe('incomplete');
  });

  test('sampling is not checked', async () => {
    await load();
    const sampled = { ...request, sampling: { ...request.sampling, temperature: 0.8 } };
    const record = await api.startCompare({ request: sampled, lanes: ['plain', 'nasd'] }, new Channel());
    expect(record.greedy).toBeNull();
  });
});

describe('start-up notices', () => {
  test('a problem the backend found at start is shown to the user', async () => {
    const { app } = await import('../../src/state.svelte');
    const notice = 'Your custom pairs file /x/custom_pairs.json was damaged (EOF). It was moved to /x/custom_pairs.json.broken-1';
    mockIPC(async (cmd, args) => {
      const answer = await backend.handle(cmd, (args ?? {}) as Record<string, unknown>);
      return cmd === 'app_info' ? { ...(answer as object), notices: [notice] } : answer;
    });
    await app.init();
    expect(app.notices.map((n) => n.title)).toContain(notice);
    expect(app.notices.find((n) => n.title === notice)?.kind).toBe('error');
  });
});
