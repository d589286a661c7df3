// The words of speculative decoding, each with one plain line for its tooltip.

export interface Term {
  term: string;
  name: string;
  line: string;
}

export const GLOSSARY = {
  alpha: {
    term: 'α',
    name: 'acceptance rate',
    line: "α (acceptance rate): the share of the small model's guesses that the big model agreed with.",
  },
  gamma: {
    term: 'γ',
    name: 'guesses per step',
    line: 'γ (gamma): how many tokens the small model guesses before the big model checks them.',
  },
  tau: {
    term: 'τ',
    name: 'tokens per check',
    line: 'τ (tau): tokens produced per run of the big model; plain decoding gives 1, higher is faster.',
  },
  nasd: {
    term: 'NASD',
    name: 'n-gram speculation',
    line: 'NASD: guesses come from repeating text already in the prompt or answer, so no small model is needed.',
  },
  speculative: {
    term: 'Speculative',
    name: 'speculative decoding',
    line: 'Speculative decoding: a small model guesses a few tokens, the big model checks them all at once, and the answer stays exactly what the big model would write.',
  },
  plain: {
    term: 'Plain',
    name: 'plain decoding',
    line: 'Plain decoding: the big model writes one token at a time. This is the baseline to beat.',
  },
  draft: {
    term: 'draft',
    name: 'draft model',
    line: 'The draft is the small, fast model that guesses tokens for the big one.',
  },
  target: {
    term: 'target',
    name: 'target model',
    line: 'The target is the big model whose answer you get; it checks every guess.',
  },
  temperature: {
    term: 'Temperature',
    name: 'temperature',
    line: 'Temperature: 0 always picks the most likely token (same answer every time); higher values make answers more varied.',
  },
  topP: {
    term: 'Top-p',
    name: 'top-p',
    line: 'Top-p: only the most likely tokens whose chances add up to p are considered; 1 keeps them all.',
  },
  seed: {
    term: 'Seed',
    name: 'seed',
    line: 'Seed: the same seed with the same settings gives the same answer again.',
  },
  int8: {
    term: 'int8',
    name: 'int8 weights',
    line: 'int8: stores the weights in about a third of the memory and runs faster, with a tiny change in quality (the next word matches full precision over 99% of the time).',
  },
  chat: {
    term: 'Chat template',
    name: 'chat template',
    line: "Chat template: wraps your prompt the way the model was trained to see a user's message. Leave it on for chat models.",
  },
  thinking: {
    term: 'Thinking',
    name: 'thinking',
    line: 'Thinking: the model reasons step by step in a <think> block before it answers. Longer, often better answers; off answers straight away.',
  },
  p: {
    term: 'p',
    name: 'target probability',
    line: 'p: how likely the big model thought each token was at this position.',
  },
  q: {
    term: 'q',
    name: 'draft probability',
    line: 'q: how likely the small draft model thought each token was at this position.',
  },
  speedup: {
    term: 'speedup',
    name: 'speedup',
    line: 'Speedup: how many times faster than plain decoding, measured in tokens per second.',
  },
} satisfies Record<string, Term>;

export type TermKey = keyof typeof GLOSSARY;
