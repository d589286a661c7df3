// Folding streamed events into view state: downloads and run lanes.

import type { DownloadEvent, GenerationSummary, Lane, RunEvent, RunRecord, StepRecord, TextPiece } from '../ipc';

export type DownloadStatus = 'starting' | 'downloading' | 'retrying' | 'verifying' | 'paused' | 'done' | 'failed';

export interface DownloadState {
  repo: string;
  status: DownloadStatus;
  done: number;
  total: number;
  bytesPerSec: number;
  etaSecs: number | null;
  file: string | null;
  /** A retry's reason or an error's sentence. */
  note: string | null;
}

export function newDownload(repo: string): DownloadState {
  return { repo, status: 'starting', done: 0, total: 0, bytesPerSec: 0, etaSecs: null, file: null, note: null };
}

/** Updates `state` with one event from the hub and returns it. */
export function applyDownloadEvent(state: DownloadState, event: DownloadEvent): DownloadState {
  switch (event.type) {
    case 'started':
      state.total = event.total_bytes;
      state.done = event.cached_bytes;
      state.status = 'downloading';
      break;
    case 'file_started':
    case 'resumed':
      state.file = event.file;
      state.status = 'downloading';
      break;
    case 'progress':
      state.file = event.file;
      state.done = event.done;
      state.total = event.total;
      state.bytesPerSec = event.bytes_per_sec;
      state.etaSecs = event.eta_secs;
      state.status = 'downloading';
      state.note = null;
      break;
    case 'retrying':
      state.status = 'retrying';
      state.note = `Connection lost; trying again (attempt ${event.attempt}).`;
      break;
    case 'verifying':
      state.status = 'verifying';
      state.file = event.file;
      break;
    case 'cancelled':
      state.status = 'paused';
      state.bytesPerSec = 0;
      state.etaSecs = null;
      break;
    case 'using_cache':
      state.status = 'done';
      state.note = 'Already downloaded; using the copy on this computer.';
      state.done = state.total;
      break;
    case 'done':
      state.status = 'done';
      state.done = state.total || state.done;
      state.bytesPerSec = 0;
      state.etaSecs = 0;
      break;
    case 'file_cached':
    case 'file_done':
      break;
  }
  return state;
}

/** 0..1 */
export function downloadFraction(state: Pick<DownloadState, 'done' | 'total'>): number {
  if (state.total <= 0) return 0;
  return Math.min(1, Math.max(0, state.done / state.total));
}

export type LaneStatus = 'waiting' | 'running' | 'done' | 'cancelled';

export interface LaneState {
  lane: Lane;
  runId: string | null;
  promptText: string;
  maxNewTokens: number;
  steps: StepRecord[];
  vocab: Record<string, string>;
  summary: GenerationSummary | null;
  text: string | null;
  tail: TextPiece | null;
  status: LaneStatus;
}

export function newLane(lane: Lane): LaneState {
  return {
    lane,
    runId: null,
    promptText: '',
    maxNewTokens: 0,
    steps: [],
    vocab: {},
    summary: null,
    text: null,
    tail: null,
    status: 'waiting',
  };
}

/** Updates the lane the event names (creating it if needed) and returns it. */
export function applyRunEvent(lanes: Partial<Record<Lane, LaneState>>, event: RunEvent): LaneState {
  const lane = (lanes[event.lane] ??= newLane(event.lane));
  switch (event.type) {
    case 'started':
      lane.runId = event.run_id;
      lane.promptText = event.prompt_text;
      lane.maxNewTokens = event.max_new_tokens;
      lane.status = 'running';
      break;
    case 'step':
      lane.steps.push(event.step);
      Object.assign(lane.vocab, event.vocab);
      lane.status = 'running';
      break;
    case 'finished':
      lane.summary = event.summary;
      lane.text = event.text;
      lane.tail = event.tail;
      lane.status = event.summary.cancelled ? 'cancelled' : 'done';
      break;
  }
  return lane;
}

/** A saved run as a finished lane (reopening from History). */
export function laneFromRecord(run: RunRecord): LaneState {
  return {
    lane: run.lane,
    runId: run.id,
    promptText: run.prompt_text,
    maxNewTokens: run.request.max_new_tokens,
    steps: run.steps,
    vocab: run.vocab,
    summary: run.summary,
    text: run.text,
    tail: null,
    status: run.summary.cancelled ? 'cancelled' : 'done',
  };
}

/** Tokens emitted so far (after retractions). */
export function laneTokenCount(lane: LaneState): number {
  return lane.steps.reduce((n, s) => n + s.trace.emitted.length - s.trace.retracted, 0);
}
