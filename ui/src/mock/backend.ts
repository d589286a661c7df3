// A mocked Tauri backend: answers every command of ipc.ts with realistic data and streams
// channel events with believable timing. Used by the view tests (through
// @tauri-apps/api/mocks), by `npm run dev` at /mock.html, and by unit tests.

import type {
  AppError,
  CatalogInfo,
  ChatTemplateInfo,
  ComparisonRecord,
  CompareRequest,
  CustomPair,
  DownloadEvent,
  ErrorCode,
  GenerateRequest,
  Hardware,
  HistoryEntry,
  HistoryItem,
  Lane,
  LoadedPair,
  LoadRequest,
  LocalModels,
  Pair,
  Precision,
  RunEvent,
  RunRecord,
  Verdict,
} from '../ipc';
import { appInfo, cachedModel, catalogPairs, GPU_WORKSTATION, LAPTOP, LOCAL_FILES, SAMPLE_PROMPTS } from './data';
import { MockVocab, simulateLane, stepVocab } from './simulate';
import { greedyVerdict } from '../lib/stats';

export interface MockOptions {
  /** `fresh`: first launch, nothing downloaded. `ready`: models, history. */
  scenario: 'fresh' | 'ready';
  /** Multiplies every simulated delay: 1 = real time, 0 = as fast as possible. */
  speed: number;
  /** Simulated download throughput in bytes per (real) second. */
  downloadRate: number;
  hardware: Hardware;
}

export interface ChannelLike<T> {
  id: number;
  onmessage: (message: T) => void;
}

type Handler = (args: Record<string, unknown>) => unknown;

function fail(code: ErrorCode, message: string): never {
  const error: AppError = { code, message };
  throw error;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class MockBackend {
  readonly options: MockOptions;
  readonly vocab = new MockVocab();
  readonly catalog: { about: string; pairs: Pair[] };
  custom: CustomPair[] = [];
  /** Repo → downloaded fraction (1 = complete). */
  cache = new Map<string, number>();
  loaded: LoadedPair | null = null;
  history: HistoryItem[] = [];
  token: string | null = null;
  /** Commands received, for tests. */
  calls: Array<{ cmd: string; args: Record<string, unknown> }> = [];
  private downloads = new Map<string, { cancelled: boolean }>();
  private runCancelled = false;
  private running = false;
  private channelIndex = new WeakMap<object, number>();
  private idCounter = 0;

  constructor(options: Partial<MockOptions> = {}) {
    this.options = {
      scenario: options.scenario ?? 'ready',
      speed: options.speed ?? 1,
      downloadRate: options.downloadRate ?? 40e6,
      hardware: options.hardware ?? LAPTOP,
    };
    this.catalog = catalogPairs();
    if (this.options.scenario === 'ready') this.seedReady();
  }

  static fromQuery(search: string): MockBackend {
    const q = new URLSearchParams(search);
    return new MockBackend({
      scenario: q.get('scenario') === 'fresh' ? 'fresh' : 'ready',
      speed: q.has('speed') ? Number(q.get('speed')) : 1,
      downloadRate: q.has('dlrate') ? Number(q.get('dlrate')) : 40e6,
      hardware: q.get('hardware') === 'gpu' ? GPU_WORKSTATION : LAPTOP,
    });
  }

  /** The mockIPC callback. */
  handle = async (cmd: string, args: Record<string, unknown> = {}): Promise<unknown> => {
    this.calls.push({ cmd, args });
    const handler = this.handlers[cmd];
    if (!handler) fail('internal', `unknown command ${cmd}`);
    return handler(args);
  };

  private handlers: Record<string, Handler> = {
    app_info: () => appInfo(this.options.hardware, this.token !== null),
    catalog: (): CatalogInfo => ({ ...this.catalog, custom: this.custom }),
    local_models: (): LocalModels => this.localModels(),
    // Other apps' files exist only on a computer that has been used a while.
    local_files: () => (this.options.scenario === 'ready' ? LOCAL_FILES : []),
    // The file dialog picks LM Studio's file, as a user would.
    pick_model_file: () => LOCAL_FILES[0].path,
    download_model: (a) => this.download(String(a.repo), a.onEvent as ChannelLike<DownloadEvent>),
    cancel_download: (a) => {
      const d = this.downloads.get(String(a.repo));
      if (d) d.cancelled = true;
      return null;
    },
    delete_model: (a) => {
      const repo = String(a.repo);
      const d = this.downloads.get(repo);
      if (d) d.cancelled = true;
      const existed = this.cache.delete(repo);
      if (this.loaded && (this.loaded.target.name === repo || this.loaded.draft?.name === repo)) this.loaded = null;
      return existed;
    },
    set_hub_token: (a) => {
      const token = typeof a.token === 'string' && a.token.trim() ? a.token.trim() : null;
      this.token = token;
      return token !== null;
    },
    doctor_pair: async (a) => {
      await this.delay(400);
      return this.doctor(String(a.draft), String(a.target), (a.precision as Precision) ?? 'f32');
    },
    add_custom_pair: async (a) => {
      const draft = String(a.draft).trim();
      const target = String(a.target).trim();
      await this.delay(500);
      const verdict = this.doctor(draft, target, 'f32');
      const pair: CustomPair = { id: `custom-${++this.idCounter}`, draft, target, verdict };
      this.custom.push(pair);
      return pair;
    },
    remove_custom_pair: (a) => {
      this.custom = this.custom.filter((p) => p.id !== a.id);
      return null;
    },
    load_pair: async (a) => this.load(a.request as LoadRequest),
    loaded_pair: () => this.loaded,
    chat_template_info: (a): ChatTemplateInfo => {
      const model = String(a.model);
      if ((this.cache.get(model) ?? 0) < 1 && !LOCAL_FILES.some((f) => f.path === model)) fail('not_found', `model ${model} is not downloaded yet`);
      // Qwen3's and SmolLM3's templates have the thinking switch (on unless turned off).
      const thinking = /qwen3|smollm3/i.test(model);
      return { has_template: true, thinking_default: thinking ? true : null };
    },
    start_run: async (a) => {
      const record = await this.runLane(a.request as GenerateRequest, a.onEvent as ChannelLike<RunEvent>, null);
      this.history.unshift({ kind: 'run', run: record });
      return record;
    },
    start_compare: async (a) => this.compare(a.request as CompareRequest, a.onEvent as ChannelLike<RunEvent>),
    cancel_run: () => {
      this.runCancelled = true;
      return null;
    },
    list_history: (): HistoryEntry[] => this.history.map(historyEntry),
    get_history_entry: (a) => {
      const item = this.history.find((h) => itemId(h) === a.id);
      if (!item) fail('not_found', `no run ${String(a.id)} in the history`);
      return item;
    },
    delete_history_entry: (a) => {
      this.history = this.history.filter((h) => itemId(h) !== a.id);
      return null;
    },
    export_log: async (a) => {
      await this.delay(200);
      if (!this.history.some((h) => itemId(h) === a.id)) fail('not_found', `no run ${String(a.id)} in the history`);
      return `/home/you/Documents/tandem-${String(a.id)}.${String(a.format)}`;
    },
  };

  private delay(ms: number): Promise<void> {
    return sleep(ms * this.options.speed);
  }

  private send<T>(channel: ChannelLike<T> | undefined, message: T): void {
    if (!channel) return;
    const index = this.channelIndex.get(channel) ?? 0;
    this.channelIndex.set(channel, index + 1);
    const internals = (globalThis as { __TAURI_INTERNALS__?: { runCallback?: (id: number, data: unknown) => void } })
      .__TAURI_INTERNALS__;
    if (internals?.runCallback && typeof channel.id === 'number') internals.runCallback(channel.id, { index, message });
    else channel.onmessage(message);
  }

  private seedReady(): void {
    const find = (repo: string) => this.catalog.pairs.flatMap((p) => [p.draft, p.target]).find((m) => m.repo === repo)!;
    this.cache.set('HuggingFaceTB/SmolLM2-135M-Instruct', 1);
    this.cache.set('HuggingFaceTB/SmolLM2-360M-Instruct', 1);
    this.cache.set('Qwen/Qwen2.5-0.5B-Instruct', 1);
    this.cache.set('Qwen/Qwen2.5-1.5B-Instruct', 0.37);
    // A Qwen3 model alone: its chat template has the thinking switch.
    this.cache.set('Qwen/Qwen3-0.6B', 1);
    void find;
    const base = Date.parse('2026-03-12T14:05:00Z');
    const request = (prompt: string, mode: GenerateRequest['mode'], temperature = 0): GenerateRequest => ({
      prompt,
      chat: true,
      mode,
      sampling: { temperature, top_k: null, top_p: temperature ? 0.95 : null, seed: 7 },
      max_new_tokens: 160,
      gamma: { Fixed: 5 },
      stop_strings: [],
      ignore_eos: false,
    });
    const at = (minutes: number) => new Date(base + minutes * 60_000).toISOString();
    const comparison = this.comparisonRecord(
      { request: request(SAMPLE_PROMPTS[0], { kind: 'speculative' }), lanes: ['plain', 'speculative', 'nasd'] },
      at(0),
    );
    this.history.push({ kind: 'comparison', comparison });
    this.history.unshift({ kind: 'run', run: this.record(request(SAMPLE_PROMPTS[1], { kind: 'speculative' }, 0.7), 'speculative', at(9)) });
    this.history.unshift({
      kind: 'run',
      run: this.record(request(SAMPLE_PROMPTS[2], { kind: 'nasd', ngram_n: 3, filler_top_k: null }), 'nasd', at(21)),
    });
  }

  private localModels(): LocalModels {
    const all = this.catalog.pairs.flatMap((p) => [p.draft, p.target]);
    const models = [...this.cache.entries()].map(([repo, fraction]) => {
      const known = all.find((m) => m.repo === repo) ?? { repo, params: 0, download_bytes: 5e6, licence: '', gated: false };
      return cachedModel(known, fraction);
    });
    const used = models.reduce((n, m) => n + m.size_on_disk, 0);
    return { models, cache_dir: '/home/you/.cache/huggingface/hub', used_bytes: used, free_bytes: 182e9 };
  }

  private modelSize(repo: string): number {
    const known = this.catalog.pairs.flatMap((p) => [p.draft, p.target]).find((m) => m.repo === repo);
    return known?.download_bytes ?? 5_000_000;
  }

  private async download(repo: string, channel: ChannelLike<DownloadEvent>): Promise<unknown> {
    if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) fail('not_found', `invalid model id "${repo}": expected "org/name"`);
    const gated = this.catalog.pairs.flatMap((p) => [p.draft, p.target]).find((m) => m.repo === repo)?.gated;
    if (gated && !this.token) {
      fail('gated', `model ${repo} is gated: accept its licence at https://huggingface.co/${repo} and give Tandem an access token`);
    }
    const total = this.modelSize(repo);
    const start = this.cache.get(repo) ?? 0;
    if (start >= 1) {
      this.send(channel, { type: 'using_cache', repo, commit: 'a1b2c3d', reason: 'already complete' });
      return { repo, snapshot_dir: `/home/you/.cache/huggingface/hub/models--${repo.replace('/', '--')}/snapshots/a1b2c3d` };
    }
    const state = { cancelled: false };
    this.downloads.set(repo, state);
    const files = [
      { file: 'config.json', size: 700, cached: start > 0 },
      { file: 'tokenizer.json', size: 2_100_000, cached: start > 0 },
      { file: 'model.safetensors', size: total, cached: false },
    ];
    this.send(channel, {
      type: 'started',
      repo,
      revision: 'main',
      commit: 'a1b2c3d',
      files,
      total_bytes: total,
      cached_bytes: 0,
    });
    let done = Math.round(start * total);
    if (done > 0) this.send(channel, { type: 'resumed', file: 'model.safetensors', from_offset: done });
    else this.send(channel, { type: 'file_started', file: 'model.safetensors', size: total });
    this.cache.set(repo, done / total);
    const tick = 200;
    const jitter = [1, 0.93, 1.08, 0.97, 1.04];
    let i = 0;
    while (done < total) {
      await sleep(tick);
      if (state.cancelled) {
        this.send(channel, { type: 'cancelled', file: 'model.safetensors', file_done: done });
        this.downloads.delete(repo);
        fail('cancelled', 'download cancelled; run it again to resume');
      }
      const rate = this.options.downloadRate * jitter[i++ % jitter.length];
      done = Math.min(total, done + Math.round((rate * tick) / 1000));
      this.cache.set(repo, done / total);
      this.send(channel, {
        type: 'progress',
        file: 'model.safetensors',
        file_done: done,
        file_total: total,
        done,
        total,
        bytes_per_sec: Math.round(rate),
        eta_secs: Math.ceil((total - done) / rate),
      });
    }
    this.send(channel, { type: 'verifying', file: 'model.safetensors' });
    await this.delay(300);
    this.send(channel, { type: 'file_done', file: 'model.safetensors', size: total });
    const snapshot = `/home/you/.cache/huggingface/hub/models--${repo.replace('/', '--')}/snapshots/a1b2c3d`;
    this.send(channel, { type: 'done', repo, commit: 'a1b2c3d', snapshot_dir: snapshot, downloaded_bytes: total, elapsed_secs: 12.5 });
    this.cache.set(repo, 1);
    this.downloads.delete(repo);
    return { repo, snapshot_dir: snapshot };
  }

  private doctor(draft: string, target: string, precision: Precision): Verdict {
    for (const repo of [draft, target]) {
      if (!/^[\w.-]+\/[\w.-]+$/.test(repo) && !repo.startsWith('/')) {
        fail('not_found', `invalid model id "${repo}": expected "org/name"`);
      }
    }
    const family = (repo: string) => repo.split('/')[0].toLowerCase().replace(/tb$/, '');
    const sameFamily = family(draft) === family(target);
    const all = this.catalog.pairs.flatMap((p) => [p.draft, p.target]);
    const d = all.find((m) => m.repo === draft);
    const t = all.find((m) => m.repo === target);
    const bytesPerParam = precision === 'int8' ? 1.5 : 4;
    const memory = {
      precision,
      context_len: 4096,
      draft: d ? { parameters: d.params, weight_bytes: d.params * bytesPerParam, kv_cache_bytes: 96e6, context_len: 4096 } : null,
      target: t ? { parameters: t.params, weight_bytes: t.params * bytesPerParam, kv_cache_bytes: 224e6, context_len: 4096 } : null,
      total_bytes: 0,
    };
    memory.total_bytes = (memory.draft ? memory.draft.weight_bytes + memory.draft.kv_cache_bytes : 0) + (memory.target ? memory.target.weight_bytes + memory.target.kv_cache_bytes : 0);
    if (!sameFamily) {
      return {
        ok: false,
        problems: [
          `The draft and the target use different vocabularies (${draft} has 49,152 tokens, ${target} has 151,936), so the target cannot check the draft's guesses.`,
        ],
        warnings: [],
        notes: [],
        memory,
        speedup: null,
      };
    }
    const share = d && t ? d.params / t.params : 0.3;
    return {
      ok: true,
      problems: [],
      warnings: share > 0.5 ? ['The draft is more than half the size of the target, so it saves little time.'] : [],
      notes: ['Both models share one tokenizer: every draft token means the same to the target.'],
      memory,
      speedup: { draft_share: share, low: 1.4, high: 2.1, acceptance_low: 0.6, acceptance_high: 0.8 },
    };
  }

  private async load(request: LoadRequest): Promise<LoadedPair> {
    for (const repo of [request.target, request.draft].filter((r): r is string => r !== null)) {
      if ((this.cache.get(repo) ?? 0) < 1) fail('not_found', `model ${repo} is not downloaded yet`);
    }
    await this.delay(700);
    const info = (repo: string, vocab: number) => ({
      name: repo,
      dir: `/home/you/.cache/huggingface/hub/models--${repo.replace('/', '--')}/snapshots/a1b2c3d`,
      architecture: repo.startsWith('Qwen') ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM',
      vocab_size: vocab,
      load_ms: 640,
    });
    const vocab = request.target.startsWith('Qwen') ? 151936 : 49152;
    this.loaded = {
      target: info(request.target, vocab),
      draft: request.draft ? info(request.draft, vocab) : null,
      precision: request.precision,
      backend: request.backend,
    };
    return this.loaded;
  }

  private record(request: GenerateRequest, lane: Lane, createdAt: string, sim = simulateLane(lane, request, this.vocab)): RunRecord {
    const vocab: Record<string, string> = {};
    sim.steps.forEach((s) => Object.assign(vocab, stepVocab(s.trace, this.vocab)));
    return {
      id: `run-${++this.idCounter}`,
      created_at: createdAt,
      lane,
      request: { ...request, mode: laneMode(lane, request) },
      target: this.loaded?.target.name ?? 'HuggingFaceTB/SmolLM2-360M-Instruct',
      draft: lane === 'speculative' ? (this.loaded?.draft?.name ?? 'HuggingFaceTB/SmolLM2-135M-Instruct') : null,
      precision: this.loaded?.precision ?? 'f32',
      backend: this.loaded?.backend ?? 'cpu',
      prompt_text: sim.promptText,
      text: sim.text,
      steps: sim.steps,
      summary: sim.summary,
      vocab,
    };
  }

  private comparisonRecord(request: CompareRequest, createdAt: string, runs?: RunRecord[]): ComparisonRecord {
    runs ??= request.lanes.map((lane) => this.record(request.request, lane, createdAt));
    const plain = runs.find((r) => r.lane === 'plain');
    const speedups: ComparisonRecord['speedups'] = {};
    if (plain) for (const r of runs) speedups[r.lane] = r.summary.tokens_per_second / plain.summary.tokens_per_second;
    const outputs = runs.map((r) => ({ lane: r.lane, text: r.text, cancelled: r.summary.cancelled }));
    const greedy = greedyVerdict(outputs, request.request.sampling.temperature, runs.length === request.lanes.length);
    return { id: `cmp-${++this.idCounter}`, created_at: createdAt, runs, speedups, greedy };
  }

  private async runLane(request: GenerateRequest, channel: ChannelLike<RunEvent>, lane: Lane | null): Promise<RunRecord> {
    if (!this.loaded) fail('no_model_loaded', 'load a model pair first');
    const theLane: Lane = lane ?? request.mode.kind;
    if (theLane === 'speculative' && !this.loaded.draft) fail('needs_draft', 'speculative decoding needs a draft model');
    if (!request.prompt.trim()) fail('invalid_request', 'the prompt is empty');
    if (this.running && lane === null) fail('busy', 'a run is already going');
    this.running = lane === null ? true : this.running;
    this.runCancelled = false;
    try {
      const record = this.record(request, theLane, new Date().toISOString());
      this.send(channel, {
        type: 'started',
        run_id: record.id,
        lane: theLane,
        prompt_text: record.prompt_text,
        prompt_len: record.summary.prompt_len,
        max_new_tokens: request.max_new_tokens,
      });
      let last = 0;
      let kept = record.steps.length;
      for (const [i, step] of record.steps.entries()) {
        await sleep((step.elapsed_ms - last) * this.options.speed);
        last = step.elapsed_ms;
        if (this.runCancelled) {
          kept = i;
          break;
        }
        this.send(channel, { type: 'step', lane: theLane, step, vocab: stepVocab(step.trace, this.vocab) });
      }
      if (kept < record.steps.length) {
        record.steps = record.steps.slice(0, kept);
        record.text = record.steps.flatMap((s) => s.tokens.map((t) => t.text)).join('');
        const tokens = record.steps.reduce((n, s) => n + s.trace.emitted.length, 0);
        record.summary = {
          ...record.summary,
          cancelled: true,
          stop_reason: 'Cancelled',
          new_tokens: tokens,
          steps: kept,
          wall_ms: last,
          tokens_per_second: last > 0 ? (tokens / last) * 1000 : 0,
        };
      }
      this.send(channel, { type: 'finished', lane: theLane, summary: record.summary, text: record.text, tail: null });
      return record;
    } finally {
      if (lane === null) this.running = false;
    }
  }

  private async compare(request: CompareRequest, channel: ChannelLike<RunEvent>): Promise<ComparisonRecord> {
    if (this.running) fail('busy', 'a run is already going');
    this.running = true;
    try {
      const runs: RunRecord[] = [];
      for (const lane of request.lanes) {
        runs.push(await this.runLane({ ...request.request, mode: laneMode(lane, request.request) }, channel, lane));
        if (this.runCancelled) break;
      }
      const record = this.comparisonRecord(request, new Date().toISOString(), runs);
      this.history.unshift({ kind: 'comparison', comparison: record });
      return record;
    } finally {
      this.running = false;
    }
  }
}

function laneMode(lane: Lane, request: GenerateRequest): GenerateRequest['mode'] {
  if (lane === 'plain') return { kind: 'plain' };
  if (lane === 'speculative') return { kind: 'speculative' };
  return request.mode.kind === 'nasd' ? request.mode : { kind: 'nasd', ngram_n: 3, filler_top_k: null };
}

function itemId(item: HistoryItem): string {
  return item.kind === 'run' ? item.run.id : item.comparison.id;
}

export function historyEntry(item: HistoryItem): HistoryEntry {
  const runs = item.kind === 'run' ? [item.run] : item.comparison.runs;
  const first = runs[0];
  const prompt = first.request.prompt.replace(/\s+/g, ' ').trim();
  return {
    id: itemId(item),
    kind: item.kind,
    created_at: item.kind === 'run' ? item.run.created_at : item.comparison.created_at,
    title: prompt.length > 80 ? prompt.slice(0, 79) + '…' : prompt,
    target: first.target,
    draft: runs.find((r) => r.draft)?.draft ?? null,
    lanes: runs.map((r) => ({
      lane: r.lane,
      new_tokens: r.summary.new_tokens,
      tokens_per_second: r.summary.tokens_per_second,
      alpha: r.summary.alpha,
    })),
  };
}
