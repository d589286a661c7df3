// The app's state, shared by the views (Svelte 5 runes). All backend calls go through
// `api` (ipc.ts); failures become friendly notices.

import {
  api,
  Channel,
  type AppInfo,
  type CatalogInfo,
  type ChatTemplateInfo,
  type ComparisonRecord,
  type DownloadEvent,
  type ExportFormat,
  type GammaPolicy,
  type GenerateRequest,
  type HistoryEntry,
  type HistoryItem,
  type Lane,
  type LoadedPair,
  type LocalFile,
  type LocalModels,
  type RunEvent,
  type RunMode,
  type RunRecord,
} from './ipc';
import { friendlyError, type FriendlyError } from './lib/errors';
import {
  applyDownloadEvent,
  applyRunEvent,
  laneFromRecord,
  newDownload,
  newLane,
  type DownloadState,
  type LaneState,
} from './lib/progress';
import { runnablePairs, type RunnablePair } from './lib/pairs';

export type ViewId = 'models' | 'run' | 'compare' | 'insights' | 'history';

export const VIEWS: Array<{ id: ViewId; label: string; hint: string }> = [
  { id: 'models', label: 'Models', hint: 'Download and manage model pairs' },
  { id: 'run', label: 'Run', hint: 'Generate text and watch every token' },
  { id: 'compare', label: 'Compare', hint: 'Race plain against speculative decoding' },
  { id: 'insights', label: 'Insights', hint: 'Acceptance, timings and speedup' },
  { id: 'history', label: 'History', hint: 'Past runs: reopen and export' },
];

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  title: string;
  fix?: string;
  detail?: string;
}

export interface RunSettings {
  pairKey: string;
  mode: Lane;
  prompt: string;
  chat: boolean;
  /** The chat template's thinking switch; null leaves the template's default. */
  thinking: boolean | null;
  gammaAuto: boolean;
  gamma: number;
  /** End a step's guesses after one the draft is unsure of (γ is then the most). */
  gammaStopUnsure: boolean;
  temperature: number;
  topP: number;
  seed: number;
  int8: boolean;
  maxNewTokens: number;
}

export type RunPhase = 'idle' | 'loading' | 'running' | 'done';

/** What Insights shows: a single run, or one lane of a comparison. */
export type InsightsSource = { kind: 'run'; run: RunRecord } | { kind: 'comparison'; comparison: ComparisonRecord };

/** A guess the draft gives less than this ends its step's guesses: on the Qwen2.5-Coder
 * pair the default suite ran fastest around it (docs/benchmarks.md); the Rust side's
 * `GammaPolicy::CONFIDENT_MIN_PROB`, the CLI's default. */
export const DRAFT_MIN_PROB = 0.7;

export function gammaPolicy(settings: Pick<RunSettings, 'gammaAuto' | 'gamma' | 'gammaStopUnsure'>): GammaPolicy {
  if (settings.gammaAuto) return { Goodput: { max: 8 } };
  if (settings.gammaStopUnsure) return { Confident: { max: settings.gamma, min_prob: DRAFT_MIN_PROB } };
  return { Fixed: settings.gamma };
}

export function runMode(lane: Lane): RunMode {
  if (lane === 'plain') return { kind: 'plain' };
  if (lane === 'speculative') return { kind: 'speculative' };
  return { kind: 'nasd', ngram_n: 3, filler_top_k: null };
}

/**
 * The request for a run. `thinkingSwitch`: the target's chat template has a thinking
 * switch; only then (and with the chat template on) is the setting sent.
 */
export function buildRequest(settings: RunSettings, lane: Lane = settings.mode, thinkingSwitch = false): GenerateRequest {
  return {
    prompt: settings.prompt,
    chat: settings.chat,
    enable_thinking: thinkingSwitch && settings.chat ? settings.thinking : null,
    mode: runMode(lane),
    sampling: {
      temperature: settings.temperature,
      top_k: null,
      top_p: settings.temperature > 0 && settings.topP < 1 ? settings.topP : null,
      seed: settings.seed,
    },
    max_new_tokens: settings.maxNewTokens,
    gamma: gammaPolicy(settings),
    stop_strings: [],
    ignore_eos: false,
  };
}

class AppState {
  view = $state<ViewId>('models');
  info = $state<AppInfo | null>(null);
  catalog = $state<CatalogInfo | null>(null);
  local = $state<LocalModels | null>(null);
  /** GGUF files LM Studio and Ollama keep, usable by path. */
  files = $state<LocalFile[]>([]);
  downloads = $state<Record<string, DownloadState>>({});
  loaded = $state<LoadedPair | null>(null);
  history = $state<HistoryEntry[]>([]);
  notices = $state<Notice[]>([]);
  ready = $state(false);

  settings = $state<RunSettings>({
    pairKey: '',
    mode: 'speculative',
    prompt: 'Explain speculative decoding in two sentences.',
    chat: true,
    thinking: null,
    gammaAuto: false,
    gamma: 8,
    gammaStopUnsure: true,
    temperature: 0,
    topP: 0.95,
    seed: 7,
    int8: false,
    maxNewTokens: 160,
  });

  runPhase = $state<RunPhase>('idle');
  runLanes = $state<Partial<Record<Lane, LaneState>>>({});
  lastRun = $state<RunRecord | null>(null);

  comparePhase = $state<RunPhase>('idle');
  compareLanes = $state<Lane[]>(['plain', 'speculative', 'nasd']);
  compareState = $state<Partial<Record<Lane, LaneState>>>({});
  lastComparison = $state<ComparisonRecord | null>(null);

  insights = $state<InsightsSource | null>(null);

  /** The chat template of the chosen pair's target (`chatTemplateFor`), for the Thinking switch. */
  chatTemplate = $state<ChatTemplateInfo | null>(null);
  chatTemplateFor = $state<string | null>(null);

  private noticeId = 0;

  pairs: RunnablePair[] = $derived(runnablePairs(this.catalog, this.local, this.files));
  selectedPair: RunnablePair | null = $derived(this.pairs.find((p) => p.key === this.settings.pairKey) ?? this.pairs[0] ?? null);
  firstLaunch: boolean = $derived(this.ready && (this.local?.models.filter((m) => m.complete).length ?? 0) === 0);
  /** The chosen target's thinking default when its template has the switch, else null. */
  thinkingDefault: boolean | null = $derived(
    this.chatTemplateFor !== null && this.chatTemplateFor === this.selectedPair?.target ? (this.chatTemplate?.thinking_default ?? null) : null,
  );
  busy: boolean = $derived(this.runPhase === 'loading' || this.runPhase === 'running' || this.comparePhase === 'loading' || this.comparePhase === 'running');

  async init(): Promise<void> {
    try {
      const [info, catalog, local, loaded, history] = await Promise.all([
        api.appInfo(),
        api.catalog(),
        api.localModels(),
        api.loadedPair(),
        api.listHistory(),
      ]);
      this.info = info;
      for (const notice of info.notices ?? []) this.notify({ kind: 'error', title: notice });
      this.catalog = catalog;
      this.local = local;
      this.loaded = loaded;
      this.history = history;
      this.ready = true;
      this.syncPair();
      // Resume-able downloads show as paused.
      for (const m of local.models) {
        if (!m.complete && m.partial_bytes > 0) {
          const size = this.modelDownloadBytes(m.repo_id);
          this.downloads[m.repo_id] = { ...newDownload(m.repo_id), status: 'paused', done: m.size_on_disk, total: size ?? m.size_on_disk };
        }
      }
      this.view = this.firstLaunch ? 'models' : 'run';
      // Other apps' folders can be large to walk: listed after the app is up.
      void this.refreshFiles();
    } catch (error) {
      this.fail(error);
      this.ready = true;
    }
  }

  /** Keeps the chosen pair valid as models come and go. */
  syncPair(): void {
    if (this.pairs.some((p) => p.key === this.settings.pairKey)) return;
    // A chosen pair whose models are still downloading stays chosen: it becomes
    // runnable when its last model lands (until then Run falls back to the first pair).
    if (this.pairRepos(this.settings.pairKey).some((repo) => this.downloads[repo] && this.downloads[repo].status !== 'failed')) return;
    this.settings.pairKey = this.pairs[0]?.key ?? '';
  }

  /** Reads the chat template of the chosen pair's target (once per target). A model whose
   * template cannot be read simply has no switch: loading it reports the problem. */
  async syncChatTemplate(target: string | null = this.selectedPair?.target ?? null): Promise<void> {
    if (target === this.chatTemplateFor) return;
    this.chatTemplateFor = target;
    this.chatTemplate = null;
    if (target === null) return;
    try {
      const info = await api.chatTemplateInfo(target);
      if (this.chatTemplateFor === target) this.chatTemplate = info;
    } catch {
      if (this.chatTemplateFor === target) this.chatTemplate = null;
    }
  }

  /** The repos of the pair behind a Run choice key (`pair:ID`, `custom:ID`). */
  private pairRepos(key: string): string[] {
    const [kind, id] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    if (kind === 'pair') {
      const pair = this.catalog?.pairs.find((p) => p.id === id);
      return pair ? [pair.draft.repo, pair.target.repo] : [];
    }
    if (kind === 'custom') {
      const pair = this.catalog?.custom.find((p) => p.id === id);
      return pair ? [pair.draft, pair.target] : [];
    }
    return [];
  }

  modelDownloadBytes(repo: string): number | null {
    for (const p of this.catalog?.pairs ?? []) {
      for (const m of [p.draft, p.target]) if (m.repo === repo) return m.download_bytes;
    }
    return null;
  }

  notify(notice: Omit<Notice, 'id'>): void {
    const id = ++this.noticeId;
    this.notices.push({ id, ...notice });
    if (notice.kind === 'info') setTimeout(() => this.dismiss(id), 6000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }

  /** Shows a failure as a friendly notice (a cancellation is not a failure). */
  fail(error: unknown): FriendlyError {
    const friendly = friendlyError(error);
    if (friendly.code !== 'cancelled') {
      this.notify({ kind: 'error', title: friendly.message, fix: friendly.fix, detail: friendly.detail });
    }
    return friendly;
  }

  async refreshLocal(): Promise<void> {
    try {
      this.local = await api.localModels();
      this.syncPair();
    } catch (error) {
      this.fail(error);
    }
  }

  async refreshHistory(): Promise<void> {
    try {
      this.history = await api.listHistory();
    } catch (error) {
      this.fail(error);
    }
  }

  // ---- Models ------------------------------------------------------------------------

  isComplete(repo: string): boolean {
    const file = this.files.some((f) => f.path === repo && f.problem === null);
    return file || (this.local?.models.some((m) => m.repo_id === repo && m.complete) ?? false);
  }

  async refreshFiles(): Promise<void> {
    try {
      this.files = await api.localFiles();
      this.syncPair();
    } catch (error) {
      this.fail(error);
    }
  }

  async download(repo: string): Promise<boolean> {
    const state = (this.downloads[repo] = { ...(this.downloads[repo] ?? newDownload(repo)), status: 'starting', note: null });
    void state;
    const channel = new Channel<DownloadEvent>();
    channel.onmessage = (event) => {
      const current = this.downloads[repo];
      if (current) applyDownloadEvent(current, event);
    };
    try {
      await api.downloadModel(repo, channel);
      const current = this.downloads[repo];
      if (current) current.status = 'done';
      await this.refreshLocal();
      delete this.downloads[repo];
      return true;
    } catch (error) {
      const friendly = this.fail(error);
      const current = this.downloads[repo];
      if (current) {
        current.status = friendly.code === 'cancelled' ? 'paused' : 'failed';
        current.note = friendly.code === 'cancelled' ? null : friendly.message;
        current.bytesPerSec = 0;
        current.etaSecs = null;
      }
      await this.refreshLocal();
      return false;
    }
  }

  /** Downloads the models of a pair that are not complete yet, one after the other. */
  async downloadPair(repos: string[]): Promise<void> {
    for (const repo of repos) {
      if (this.isComplete(repo)) continue;
      if (!(await this.download(repo))) return;
    }
  }

  async pause(repo: string): Promise<void> {
    try {
      await api.cancelDownload(repo);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Cancels a download and throws its partial files away. */
  async cancelDownload(repo: string): Promise<void> {
    try {
      const d = this.downloads[repo];
      if (d && d.status !== 'paused' && d.status !== 'failed') await api.cancelDownload(repo);
      await api.deleteModel(repo);
      delete this.downloads[repo];
      await this.refreshLocal();
    } catch (error) {
      this.fail(error);
    }
  }

  async deleteModel(repo: string): Promise<void> {
    try {
      await api.deleteModel(repo);
      delete this.downloads[repo];
      if (this.loaded && (this.loaded.target.name === repo || this.loaded.draft?.name === repo)) this.loaded = null;
      await this.refreshLocal();
      this.notify({ kind: 'info', title: `Deleted ${repo}.` });
    } catch (error) {
      this.fail(error);
    }
  }

  async setToken(token: string | null): Promise<void> {
    try {
      const has = await api.setHubToken(token);
      if (this.info) this.info.has_token = has;
      this.notify({ kind: 'info', title: has ? 'Access token saved for this session.' : 'Access token forgotten.' });
    } catch (error) {
      this.fail(error);
    }
  }

  async refreshCatalog(): Promise<void> {
    try {
      this.catalog = await api.catalog();
      this.syncPair();
    } catch (error) {
      this.fail(error);
    }
  }

  // ---- Running -----------------------------------------------------------------------

  /** Loads the chosen pair unless it is already loaded with the same settings. */
  async ensureLoaded(needDraft: boolean): Promise<boolean> {
    const pair = this.selectedPair;
    if (!pair) {
      this.notify({ kind: 'error', title: 'No model pair is downloaded yet.', fix: 'Download a recommended pair in Models first.' });
      return false;
    }
    if (needDraft && !pair.draft) {
      this.fail({ code: 'needs_draft', message: `${pair.target} has no draft model` });
      return false;
    }
    const precision = this.settings.int8 ? 'int8' : 'f32';
    const backend = this.info?.backends.includes('cuda') ? 'cuda' : 'cpu';
    const l = this.loaded;
    const same =
      l &&
      l.target.name === pair.target &&
      (l.draft?.name ?? null) === pair.draft &&
      l.precision === precision &&
      l.backend === backend;
    if (same) return true;
    try {
      this.loaded = await api.loadPair({ target: pair.target, draft: pair.draft, precision, backend });
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  async startRun(): Promise<void> {
    if (this.busy) return;
    this.runPhase = 'loading';
    this.runLanes = {};
    if (!(await this.ensureLoaded(this.settings.mode === 'speculative'))) {
      this.runPhase = 'idle';
      return;
    }
    this.runPhase = 'running';
    const lane = this.settings.mode;
    this.runLanes = { [lane]: newLane(lane) };
    const channel = new Channel<RunEvent>();
    channel.onmessage = (event) => {
      applyRunEvent(this.runLanes, event);
    };
    try {
      const record = await api.startRun(buildRequest(this.settings, this.settings.mode, this.thinkingDefault !== null), channel);
      this.lastRun = record;
      this.runLanes = { [record.lane]: laneFromRecord(record) };
      this.insights = { kind: 'run', run: record };
      await this.refreshHistory();
    } catch (error) {
      this.fail(error);
    } finally {
      this.runPhase = 'done';
    }
  }

  async startCompare(): Promise<void> {
    if (this.busy) return;
    const lanes = (['plain', 'speculative', 'nasd'] as Lane[]).filter((l) => this.compareLanes.includes(l));
    if (lanes.length < 2) {
      this.notify({ kind: 'error', title: 'A race needs at least two lanes.', fix: 'Tick Plain and one of Speculative or NASD.' });
      return;
    }
    this.comparePhase = 'loading';
    this.compareState = {};
    // The last race's verdict must not stand for this one while it runs.
    this.lastComparison = null;
    if (!(await this.ensureLoaded(lanes.includes('speculative')))) {
      this.comparePhase = 'idle';
      return;
    }
    this.comparePhase = 'running';
    this.compareState = Object.fromEntries(lanes.map((l) => [l, newLane(l)]));
    const channel = new Channel<RunEvent>();
    channel.onmessage = (event) => {
      applyRunEvent(this.compareState, event);
    };
    try {
      const request = buildRequest(this.settings, 'speculative', this.thinkingDefault !== null);
      const record = await api.startCompare({ request, lanes }, channel);
      this.lastComparison = record;
      this.compareState = Object.fromEntries(record.runs.map((r) => [r.lane, laneFromRecord(r)]));
      this.insights = { kind: 'comparison', comparison: record };
      await this.refreshHistory();
    } catch (error) {
      this.fail(error);
    } finally {
      this.comparePhase = 'done';
    }
  }

  async cancelRun(): Promise<void> {
    try {
      await api.cancelRun();
    } catch (error) {
      this.fail(error);
    }
  }

  // ---- History -----------------------------------------------------------------------

  async openHistory(id: string, view: ViewId = 'insights'): Promise<void> {
    try {
      const item: HistoryItem = await api.getHistoryEntry(id);
      if (item.kind === 'run') {
        this.lastRun = item.run;
        this.runLanes = { [item.run.lane]: laneFromRecord(item.run) };
        this.runPhase = 'done';
        this.insights = { kind: 'run', run: item.run };
        this.settings.prompt = item.run.request.prompt;
        this.settings.mode = item.run.lane;
      } else {
        this.lastComparison = item.comparison;
        this.compareState = Object.fromEntries(item.comparison.runs.map((r) => [r.lane, laneFromRecord(r)]));
        this.compareLanes = item.comparison.runs.map((r) => r.lane);
        this.comparePhase = 'done';
        this.insights = { kind: 'comparison', comparison: item.comparison };
        if (item.comparison.runs[0]) this.settings.prompt = item.comparison.runs[0].request.prompt;
      }
      this.view = view === 'run' && item.kind === 'comparison' ? 'compare' : view;
    } catch (error) {
      this.fail(error);
    }
  }

  async deleteHistory(id: string): Promise<void> {
    try {
      await api.deleteHistoryEntry(id);
      await this.refreshHistory();
    } catch (error) {
      this.fail(error);
    }
  }

  async exportLog(id: string, format: ExportFormat): Promise<void> {
    try {
      const path = await api.exportLog(id, format);
      if (path) this.notify({ kind: 'info', title: `Saved the ${format.toUpperCase()} log to ${path}` });
    } catch (error) {
      this.fail(error);
    }
  }
}

export const app = new AppState();
