// The IPC contract between the UI and the Tauri shell (src-tauri/src/commands.rs).
//
// This file is the single place the two sides must agree on: every command name, its
// arguments, its answer, and the payloads streamed over channels. Types mirror the Rust
// serde types field for field (snake_case fields, serde's externally tagged enums), so
// a change on one side is a change here too. docs/ipc.md describes the same contract
// for readers of the Rust side.
//
// Conventions
// - Command names are snake_case (the Rust function names). Argument keys are
//   camelCase, as Tauri 2 maps them onto snake_case Rust parameters.
// - A failed command rejects with an `AppError`; `friendlyError()` (lib/errors.ts)
//   turns it into a sentence with the fix.
// - Long work (downloads, loading, generating) runs off the UI thread on the Rust side;
//   progress arrives on a `Channel` passed as `onEvent`.

import { Channel, invoke } from '@tauri-apps/api/core';

// ---------------------------------------------------------------------------------------
// tandem-decode (crates/tandem-decode/src/trace.rs, gamma.rs, sampling.rs)
// ---------------------------------------------------------------------------------------

/** Where an emitted token came from. */
export type TokenOrigin = 'Target' | 'AcceptedDraft' | 'Corrected' | 'Bonus' | 'NgramHit';

export const TOKEN_ORIGINS: readonly TokenOrigin[] = ['Target', 'AcceptedDraft', 'Corrected', 'Bonus', 'NgramHit'];

export interface TokenProb {
  token: number;
  prob: number;
}

export interface DraftTrace {
  token: number;
  /** q(token): the draft's probability; 1 for an n-gram draft. */
  q: number;
  /** The five most likely tokens under q. */
  q_top: TokenProb[];
  /** NASD only: length of the n-gram context that proposed this token. */
  ngram_context_len: number | null;
}

export interface VerifyTrace {
  /** Index in the whole sequence (prompt included) of the token this position predicts. */
  index: number;
  /** p(draft) when this position judged a draft; null at the bonus or plain position. */
  p_draft: number | null;
  /** The five most likely tokens under p. */
  p_top: TokenProb[];
}

export interface EmittedToken {
  token: number;
  origin: TokenOrigin;
}

export type GammaRule = 'Plain' | 'Fixed' | 'Heuristic' | 'GoodputPrior' | 'Goodput' | 'Confident' | 'Budget';

export interface GammaChoice {
  gamma: number;
  policy_gamma: number;
  rule: GammaRule;
  alpha_estimate: number | null;
  cost_ratio: number | null;
}

export interface StepTrace {
  step: number;
  gamma: GammaChoice;
  drafts: DraftTrace[];
  verified: VerifyTrace[];
  judged: number;
  accepted: number;
  final_token: EmittedToken | null;
  emitted: EmittedToken[];
  retracted: number;
  draft_ms: number;
  verify_ms: number;
  draft_forwards: number;
  target_forwards: number;
}

/** serde: `"Plain"`, `"Speculative"` or `{"Nasd": {...}}`. */
export type ModeKind = 'Plain' | 'Speculative' | { Nasd: { ngram_n: number; filler_top_k: number | null } };

/** serde: `{"Eos": {"token": 2}}`, `"MaxNewTokens"`, `{"StopString": {"stop": "\n"}}`, `"Cancelled"`. */
export type StopReason = { Eos: { token: number } } | 'MaxNewTokens' | { StopString: { stop: string } } | 'Cancelled';

export interface PositionAcceptance {
  drafted: number;
  accepted: number;
  rate: number;
}

export interface GenerationSummary {
  mode: ModeKind;
  prompt_len: number;
  new_tokens: number;
  steps: number;
  drafted: number;
  accepted: number;
  /** α = accepted / drafted; null when nothing was drafted. */
  alpha: number | null;
  /** τ = new tokens per target forward. */
  tau: number;
  acceptance_by_position: PositionAcceptance[];
  target_forwards: number;
  draft_forwards: number;
  tokens_per_second: number;
  wall_ms: number;
  time_to_first_token_ms: number | null;
  /** Time inside the models' forwards; the rest of wall_ms is the decoder's own work (absent in older logs). */
  model_ms?: number;
  draft_ms: number;
  verify_ms: number;
  cancelled: boolean;
  stop_reason: StopReason;
}

export interface SamplingConfig {
  /** 0 = greedy. */
  temperature: number;
  top_k: number | null;
  top_p: number | null;
  seed: number;
}

/** serde: `{"Fixed": 4}`, `{"Heuristic": {...}}`, `{"Goodput": {"max": 8}}` or
 * `{"Confident": {"max": 8, "min_prob": 0.4}}`. */
export type GammaPolicy =
  | { Fixed: number }
  | { Heuristic: { start: number; min: number; max: number } }
  | { Goodput: { max: number } }
  | { Confident: { max: number; min_prob: number } };

// ---------------------------------------------------------------------------------------
// tandem-engine (crates/tandem-engine/src/run.rs)
// ---------------------------------------------------------------------------------------

/** serde: internally tagged with `kind`. */
export type RunMode =
  | { kind: 'plain' }
  | { kind: 'speculative' }
  | { kind: 'nasd'; ngram_n: number; filler_top_k: number | null };

export interface GenerateRequest {
  prompt: string;
  /** Wrap the prompt as a user message in the model's chat template. */
  chat: boolean;
  /** The chat template's thinking switch (Qwen3, SmolLM3: reason in a `<think>` block
   * first, or answer straight away); absent or null leaves the template's default. */
  enable_thinking?: boolean | null;
  mode: RunMode;
  sampling: SamplingConfig;
  max_new_tokens: number;
  gamma: GammaPolicy;
  stop_strings: string[];
  ignore_eos: boolean;
}

// ---------------------------------------------------------------------------------------
// tandem-hub (crates/tandem-hub/src/progress.rs, inventory.rs)
// ---------------------------------------------------------------------------------------

export interface PlannedFile {
  file: string;
  size: number;
  cached: boolean;
}

/** serde: internally tagged with `type`, snake_case. */
export type DownloadEvent =
  | {
      type: 'started';
      repo: string;
      revision: string;
      commit: string;
      files: PlannedFile[];
      total_bytes: number;
      cached_bytes: number;
    }
  | { type: 'file_cached'; file: string; size: number }
  | { type: 'file_started'; file: string; size: number }
  | { type: 'resumed'; file: string; from_offset: number }
  | {
      type: 'progress';
      file: string;
      file_done: number;
      file_total: number;
      done: number;
      total: number;
      bytes_per_sec: number;
      eta_secs: number | null;
    }
  | { type: 'retrying'; file: string; attempt: number; from_offset: number; reason: string }
  | { type: 'verifying'; file: string }
  | { type: 'file_done'; file: string; size: number }
  | { type: 'cancelled'; file: string; file_done: number }
  | { type: 'using_cache'; repo: string; commit: string; reason: string }
  | {
      type: 'done';
      repo: string;
      commit: string;
      snapshot_dir: string;
      downloaded_bytes: number;
      elapsed_secs: number;
    };

// ---------------------------------------------------------------------------------------
// tandem-pairs (crates/tandem-pairs/src/catalog.rs, doctor/, memory.rs)
// ---------------------------------------------------------------------------------------

export type Precision = 'f32' | 'int8';

export interface CatalogModel {
  repo: string;
  params: number;
  /** Bytes of the bf16 safetensors weights (approximate). */
  download_bytes: number;
  licence: string;
  gated: boolean;
}

export interface Pair {
  id: string;
  draft: CatalogModel;
  target: CatalogModel;
  note: string;
}

export interface ModelMemory {
  parameters: number;
  weight_bytes: number;
  kv_cache_bytes: number;
  context_len: number;
}

export interface MemoryEstimate {
  precision: Precision;
  context_len: number;
  draft: ModelMemory | null;
  target: ModelMemory | null;
  total_bytes: number;
}

export interface SpeedupHint {
  draft_share: number;
  low: number;
  high: number;
  acceptance_low: number;
  acceptance_high: number;
}

/** The pair doctor's judgement: problems block the pair, warnings slow it down. */
export interface Verdict {
  ok: boolean;
  problems: string[];
  warnings: string[];
  notes: string[];
  memory: MemoryEstimate;
  speedup: SpeedupHint | null;
}

// ---------------------------------------------------------------------------------------
// The app itself (src-tauri/src/*.rs)
// ---------------------------------------------------------------------------------------

/** `cpu`: Tandem's CPU engine; `flex`: burn's CPU backend (the reference; runs logged before the engine say it); `cuda`: NVIDIA GPU; `cuda-unfused`: the GPU without burn's fusion (runs of the command line's check). */
export type BackendKind = 'cpu' | 'flex' | 'cuda' | 'cuda-unfused';

export interface Gpu {
  name: string;
  memory_bytes: number;
}

export interface Hardware {
  total_memory_bytes: number;
  available_memory_bytes: number;
  cpu_cores: number;
  gpus: Gpu[];
  os: string;
}

export interface AppInfo {
  version: string;
  /** Backends this build can run: always cpu (Tandem's CPU engine), cuda with the GPU build. */
  backends: BackendKind[];
  hardware: Hardware;
  hub_endpoint: string;
  cache_dir: string;
  has_token: boolean;
  history_dir: string;
  /** Problems found while starting (a damaged custom pairs file, moved aside), to show once. */
  notices: string[];
}

/** One model folder of the Hugging Face cache. */
export interface LocalModel {
  repo_id: string;
  dir: string;
  size_on_disk: number;
  /** Bytes of unfinished downloads: a paused download can be resumed. */
  partial_bytes: number;
  /** Weights, configs and tokenizer are all in place. */
  complete: boolean;
}

export interface LocalModels {
  models: LocalModel[];
  cache_dir: string;
  used_bytes: number;
  /** Free space on the cache's disk; null when it cannot be read. */
  free_bytes: number | null;
}

/** A GGUF file another app keeps (LM Studio, Ollama), usable by its path. */
export interface LocalFile {
  source: 'lm_studio' | 'ollama' | 'hugging_face';
  /** The name the app shows, e.g. `qwen2.5-coder:1.5b`. */
  name: string;
  /** What a pair or a run uses. */
  path: string;
  size_bytes: number;
  architecture: string | null;
  /** The file's precision, e.g. `Q4_K_M`. */
  precision: string | null;
  /** Why Tandem cannot load it; null when it can. */
  problem: string | null;
}

/** A pair the user added by repo id. */
export interface CustomPair {
  id: string;
  draft: string;
  target: string;
  verdict: Verdict | null;
}

export interface CatalogInfo {
  about: string;
  pairs: Pair[];
  custom: CustomPair[];
}

export interface DownloadDone {
  repo: string;
  snapshot_dir: string;
}

export interface LoadRequest {
  /** Repo id of a downloaded model, or a model folder. */
  target: string;
  /** Null for plain and NASD runs only. */
  draft: string | null;
  precision: Precision;
  backend: BackendKind;
}

/** What a model's chat template offers besides the conversation. */
export interface ChatTemplateInfo {
  has_template: boolean;
  /** The template's thinking switch (`enable_thinking`): its default; null when it has none. */
  thinking_default: boolean | null;
}

export interface LoadedModelInfo {
  name: string;
  dir: string;
  architecture: string;
  vocab_size: number;
  load_ms: number;
}

export interface LoadedPair {
  target: LoadedModelInfo;
  draft: LoadedModelInfo | null;
  precision: Precision;
  backend: BackendKind;
}

/** One lane of a run: a run has one, a comparison several. */
export type Lane = 'plain' | 'speculative' | 'nasd';

export const LANES: readonly Lane[] = ['plain', 'speculative', 'nasd'];

/** An emitted token with the text it released (empty while a character is incomplete). */
export interface TokenText {
  id: number;
  text: string;
  origin: TokenOrigin;
}

export interface TextPiece {
  text: string;
  origin: TokenOrigin;
}

/** One step as the UI keeps it: the trace, its tokens' text and when it ended. */
export interface StepRecord {
  trace: StepTrace;
  /** Aligned with `trace.emitted`. */
  tokens: TokenText[];
  /** Milliseconds from the start of the lane to the end of this step. */
  elapsed_ms: number;
}

/** Streamed on the `onEvent` channel of `start_run` and `start_compare`. serde: tagged with `type`. */
export type RunEvent =
  | {
      type: 'started';
      run_id: string;
      lane: Lane;
      prompt_text: string;
      prompt_len: number;
      max_new_tokens: number;
    }
  | {
      type: 'step';
      lane: Lane;
      step: StepRecord;
      /** Text of every token id the trace mentions (drafts, top-5 lists), for the inspector. */
      vocab: Record<string, string>;
    }
  | {
      type: 'finished';
      lane: Lane;
      summary: GenerationSummary;
      text: string;
      /** Text held back until the end (a possible stop string), if any. */
      tail: TextPiece | null;
    };

export interface RunRecord {
  id: string;
  /** RFC 3339. */
  created_at: string;
  lane: Lane;
  request: GenerateRequest;
  target: string;
  draft: string | null;
  precision: Precision;
  backend: BackendKind;
  prompt_text: string;
  text: string;
  steps: StepRecord[];
  summary: GenerationSummary;
  vocab: Record<string, string>;
}

export interface CompareRequest {
  request: GenerateRequest;
  /** Lanes to race; `plain` first is the baseline. */
  lanes: Lane[];
}

export interface ComparisonRecord {
  id: string;
  created_at: string;
  runs: RunRecord[];
  /** Tokens/s of each lane divided by plain's; absent without a plain lane. */
  speedups: Partial<Record<Lane, number>>;
  /** The greedy exactness check; null when sampling or without a plain lane. */
  greedy: GreedyVerdict | null;
}

/**
 * `identical`: every lane ran to its end and wrote plain's tokens. `different`: a lane
 * differs. `incomplete`: no difference found, but not everything was compared (a lane
 * was cancelled, or plain ran alone), so identical is not proven.
 */
export type GreedyVerdict = 'identical' | 'different' | 'incomplete';

export interface HistoryLane {
  lane: Lane;
  new_tokens: number;
  tokens_per_second: number;
  alpha: number | null;
}

export interface HistoryEntry {
  id: string;
  kind: 'run' | 'comparison';
  created_at: string;
  /** The prompt, shortened. */
  title: string;
  target: string;
  draft: string | null;
  lanes: HistoryLane[];
}

export type HistoryItem = { kind: 'run'; run: RunRecord } | { kind: 'comparison'; comparison: ComparisonRecord };

export type ExportFormat = 'jsonl' | 'csv' | 'html';

/** What a failed command rejects with. `code` picks the friendly sentence and the fix. */
export interface AppError {
  code: ErrorCode;
  /** The underlying error, worded by the crate that raised it. */
  message: string;
}

export type ErrorCode =
  | 'gated'
  | 'not_found'
  | 'network'
  | 'disk_full'
  | 'cancelled'
  | 'incompatible_pair'
  | 'no_model_loaded'
  | 'needs_draft'
  | 'busy'
  | 'out_of_memory'
  | 'unsupported_model'
  | 'invalid_request'
  | 'io'
  | 'internal';

// ---------------------------------------------------------------------------------------
// Commands: the only functions the UI uses to talk to Rust.
// ---------------------------------------------------------------------------------------

export const COMMANDS = [
  'app_info',
  'catalog',
  'local_models',
  'local_files',
  'pick_model_file',
  'download_model',
  'cancel_download',
  'delete_model',
  'set_hub_token',
  'doctor_pair',
  'add_custom_pair',
  'remove_custom_pair',
  'load_pair',
  'loaded_pair',
  'chat_template_info',
  'start_run',
  'start_compare',
  'cancel_run',
  'list_history',
  'get_history_entry',
  'delete_history_entry',
  'export_log',
] as const;

export type CommandName = (typeof COMMANDS)[number];

export const api = {
  appInfo: () => invoke<AppInfo>('app_info'),
  catalog: () => invoke<CatalogInfo>('catalog'),
  localModels: () => invoke<LocalModels>('local_models'),
  /** GGUF files of LM Studio and Ollama on this computer. */
  localFiles: () => invoke<LocalFile[]>('local_files'),
  /** A GGUF file chosen in the system's file dialog; null when the dialog was closed. */
  pickModelFile: () => invoke<string | null>('pick_model_file'),

  /** Resolves when the download is complete; rejects with code `cancelled` when paused or cancelled. */
  downloadModel: (repo: string, onEvent: Channel<DownloadEvent>) =>
    invoke<DownloadDone>('download_model', { repo, onEvent }),
  /** Stops a download; the partial file is kept so the download can resume. */
  cancelDownload: (repo: string) => invoke<void>('cancel_download', { repo }),
  /** Deletes a model (or a paused download's partial files). Resolves to whether anything was there. */
  deleteModel: (repo: string) => invoke<boolean>('delete_model', { repo }),
  /** A Hugging Face token for gated models; null forgets it. Kept in memory for this session. */
  setHubToken: (token: string | null) => invoke<boolean>('set_hub_token', { token }),

  /** Checks a pair from its configs and tokenizers (kilobytes, not the weights). */
  doctorPair: (draft: string, target: string, precision: Precision) =>
    invoke<Verdict>('doctor_pair', { draft, target, precision }),
  addCustomPair: (draft: string, target: string) => invoke<CustomPair>('add_custom_pair', { draft, target }),
  removeCustomPair: (id: string) => invoke<void>('remove_custom_pair', { id }),

  loadPair: (request: LoadRequest) => invoke<LoadedPair>('load_pair', { request }),
  loadedPair: () => invoke<LoadedPair | null>('loaded_pair'),
  /** A downloaded model's chat template, read without loading the model: its thinking switch. */
  chatTemplateInfo: (model: string) => invoke<ChatTemplateInfo>('chat_template_info', { model }),

  /** Runs one generation on the loaded pair, streaming steps; resolves with the saved record. */
  startRun: (request: GenerateRequest, onEvent: Channel<RunEvent>) =>
    invoke<RunRecord>('start_run', { request, onEvent }),
  /** Runs the lanes one after another on the same prompt; every event names its lane. */
  startCompare: (request: CompareRequest, onEvent: Channel<RunEvent>) =>
    invoke<ComparisonRecord>('start_compare', { request, onEvent }),
  /** Stops the current run or comparison; what it produced is kept. */
  cancelRun: () => invoke<void>('cancel_run'),

  listHistory: () => invoke<HistoryEntry[]>('list_history'),
  getHistoryEntry: (id: string) => invoke<HistoryItem>('get_history_entry', { id }),
  deleteHistoryEntry: (id: string) => invoke<void>('delete_history_entry', { id }),
  /** Asks where to save (native dialog) and writes the log. Resolves to the path, or null if the user cancelled. */
  exportLog: (id: string, format: ExportFormat) => invoke<string | null>('export_log', { id, format }),
};

export type Api = typeof api;

export { Channel };

/** Narrows an unknown rejection to an AppError. */
export function isAppError(value: unknown): value is AppError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AppError).code === 'string' &&
    typeof (value as AppError).message === 'string'
  );
}

/** `ModeKind` → the lane it runs in. */
export function laneOfMode(mode: ModeKind | RunMode): Lane {
  if (typeof mode === 'string') return mode === 'Plain' ? 'plain' : 'speculative';
  if ('kind' in mode) return mode.kind;
  return 'nasd';
}
