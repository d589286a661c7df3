// Errors as friendly sentences with the fix. The Rust side sends a code and its own
// precise message; the code picks the sentence, the message is kept as detail.

import { isAppError, type ErrorCode } from '../ipc';

export interface FriendlyError {
  code: ErrorCode;
  /** What happened, in one plain sentence. */
  message: string;
  /** What to do about it. */
  fix: string;
  /** The technical message, for "Show details". */
  detail: string;
}

const TEXT: Record<ErrorCode, { message: string; fix: string }> = {
  gated: {
    message: 'This model is gated: its authors ask you to accept their licence before downloading.',
    fix: "Open the model's page on Hugging Face, accept the licence, then paste your access token in Models → Access token.",
  },
  not_found: {
    message: "That model couldn't be found.",
    fix: 'Check the spelling of the repo id: it looks like "organisation/model-name", e.g. "Qwen/Qwen2.5-0.5B-Instruct".',
  },
  network: {
    message: "Tandem couldn't reach the model hub.",
    fix: 'Check your internet connection and try again. Paused downloads resume where they stopped.',
  },
  disk_full: {
    message: "There isn't enough free disk space for this download.",
    fix: 'Delete models you no longer use in Models, or free some space on your disk, then resume.',
  },
  cancelled: {
    message: 'Stopped.',
    fix: 'Nothing was lost: start again when you are ready.',
  },
  incompatible_pair: {
    message: "These two models can't work together: the small model must share the big model's vocabulary.",
    fix: 'Pick a draft from the same family as the target (for example Qwen with Qwen), or use NASD, which needs no draft.',
  },
  no_model_loaded: {
    message: 'No model is loaded yet.',
    fix: 'Choose a model pair at the top of the Run view; Tandem loads it before it starts.',
  },
  needs_draft: {
    message: 'Speculative decoding needs a small draft model next to the big one.',
    fix: 'Choose a pair with a draft model, or switch the mode to Plain or NASD.',
  },
  busy: {
    message: 'Tandem is still busy with the previous run.',
    fix: 'Wait for it to finish, or press Stop first.',
  },
  out_of_memory: {
    message: "The models don't fit in this computer's memory.",
    fix: 'Turn on int8 to need well under half the memory, or pick a smaller pair.',
  },
  unsupported_model: {
    message: "Tandem can't run this model's architecture yet.",
    fix: 'Use a model of a supported family (Llama, Qwen2/3, Mistral, Gemma 1–3, Phi-3, SmolLM2/3), such as the pairs in the catalog.',
  },
  invalid_request: {
    message: "Some settings aren't valid.",
    fix: 'Check the highlighted settings and try again.',
  },
  io: {
    message: "Tandem couldn't read or write a file.",
    fix: 'Check that the folder exists and that you may write to it, then try again.',
  },
  internal: {
    message: 'Something went wrong inside Tandem.',
    fix: 'Try again; if it keeps happening, export the log from History and report it.',
  },
};

/** Any rejection → a friendly error. Unknown shapes become `internal` with their text kept. */
export function friendlyError(error: unknown): FriendlyError {
  if (isAppError(error)) {
    const text = TEXT[error.code] ?? TEXT.internal;
    const code = error.code in TEXT ? error.code : 'internal';
    // invalid_request messages are already written for people: show them as they are.
    const message = code === 'invalid_request' && error.message ? sentence(error.message) : text.message;
    return { code, message, fix: text.fix, detail: error.message };
  }
  const detail = error instanceof Error ? error.message : typeof error === 'string' ? error : JSON.stringify(error);
  return { code: 'internal', ...TEXT.internal, detail: detail ?? '' };
}

/** Capitalised, with a full stop. */
export function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : first + '.';
}
