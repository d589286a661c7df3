import { describe, expect, test } from 'vitest';
import type { CatalogInfo, LocalFile, LocalModels } from '../../src/ipc';
import { pairTitle, runnablePairs } from '../../src/lib/pairs';
import { catalogPairs } from '../../src/mock/data';
import { buildRequest, DRAFT_MIN_PROB, gammaPolicy, runMode, type RunSettings } from '../../src/state.svelte';

const settings: RunSettings = {
  pairKey: 'pair:smollm2-135m-360m',
  mode: 'speculative',
  prompt: 'Hi',
  chat: true,
  thinking: null,
  gammaAuto: false,
  gamma: 5,
  gammaStopUnsure: false,
  temperature: 0,
  topP: 0.9,
  seed: 3,
  int8: false,
  maxNewTokens: 64,
};

describe('run settings → the engine request', () => {
  test('γ: fixed, at most γ while the draft is sure, or auto (goodput)', () => {
    expect(gammaPolicy(settings)).toEqual({ Fixed: 5 });
    expect(gammaPolicy({ ...settings, gammaStopUnsure: true })).toEqual({ Confident: { max: 5, min_prob: DRAFT_MIN_PROB } });
    expect(gammaPolicy({ ...settings, gammaAuto: true })).toEqual({ Goodput: { max: 8 } });
    expect(gammaPolicy({ ...settings, gammaAuto: true, gammaStopUnsure: true })).toEqual({ Goodput: { max: 8 } });
  });
  test('modes use the engine’s tagged form', () => {
    expect(runMode('plain')).toEqual({ kind: 'plain' });
    expect(runMode('nasd')).toEqual({ kind: 'nasd', ngram_n: 3, filler_top_k: null });
  });
  test('greedy ignores top-p; sampling sends it', () => {
    const greedy = buildRequest(settings);
    expect(greedy).toMatchObject({ prompt: 'Hi', chat: true, mode: { kind: 'speculative' }, max_new_tokens: 64, stop_strings: [], ignore_eos: false });
    expect(greedy.sampling).toEqual({ temperature: 0, top_k: null, top_p: null, seed: 3 });
    expect(buildRequest({ ...settings, temperature: 0.7 }).sampling.top_p).toBe(0.9);
    expect(buildRequest({ ...settings, temperature: 0.7, topP: 1 }).sampling.top_p).toBeNull();
    expect(buildRequest(settings, 'plain').mode).toEqual({ kind: 'plain' });
  });
  test('the thinking switch is sent only for a template that has one, with the chat template on', () => {
    // Untouched: the template's own default (the field left null).
    expect(buildRequest(settings, 'speculative', true).enable_thinking).toBeNull();
    const off = { ...settings, thinking: false };
    expect(buildRequest(off, 'speculative', true).enable_thinking).toBe(false);
    expect(buildRequest({ ...settings, thinking: true }, 'plain', true).enable_thinking).toBe(true);
    // A template without the switch, or no chat template: nothing to switch.
    expect(buildRequest(off, 'speculative', false).enable_thinking).toBeNull();
    expect(buildRequest({ ...off, chat: false }, 'speculative', true).enable_thinking).toBeNull();
    expect(buildRequest(off).enable_thinking).toBeNull();
  });
});

describe('pairs the Run view offers', () => {
  const { about, pairs } = catalogPairs();
  const catalog: CatalogInfo = {
    about,
    pairs,
    custom: [{ id: 'custom-1', draft: 'a/d', target: 'a/t', verdict: null }],
  };
  const model = (repo_id: string, complete = true) => ({ repo_id, dir: '/c', size_on_disk: 1, partial_bytes: complete ? 0 : 1, complete });
  test('only pairs whose models are both downloaded, then single models', () => {
    const local: LocalModels = {
      models: [
        model('HuggingFaceTB/SmolLM2-135M-Instruct'),
        model('HuggingFaceTB/SmolLM2-360M-Instruct'),
        model('Qwen/Qwen2.5-0.5B-Instruct'),
        model('Qwen/Qwen2.5-1.5B-Instruct', false),
        model('a/d'),
        model('a/t'),
      ],
      cache_dir: '/c',
      used_bytes: 0,
      free_bytes: null,
    };
    const keys = runnablePairs(catalog, local).map((p) => p.key);
    expect(keys).toEqual([
      'pair:smollm2-135m-360m',
      'custom:custom-1',
      'model:HuggingFaceTB/SmolLM2-135M-Instruct',
      'model:HuggingFaceTB/SmolLM2-360M-Instruct',
      'model:Qwen/Qwen2.5-0.5B-Instruct',
      'model:a/d',
      'model:a/t',
    ]);
    expect(runnablePairs(catalog, null)).toEqual([]);
  });
  test("other apps' GGUF files pair and run by path, under the names those apps give", () => {
    const file = (path: string, name: string, problem: string | null = null): LocalFile => ({
      source: 'ollama',
      name,
      path,
      size_bytes: 1,
      architecture: 'qwen2',
      precision: 'Q4_K_M',
      problem,
    });
    const files = [file('/o/blobs/sha256-d', 'qwen2.5-coder:0.5b'), file('/l/t.gguf', 'pub/t.gguf'), file('/o/blobs/sha256-x', 'llava:7b', 'a vision projector (mmproj), not a language model')];
    const catalog: CatalogInfo = {
      about: '',
      pairs: [],
      custom: [
        { id: 'custom-1', draft: '/o/blobs/sha256-d', target: '/l/t.gguf', verdict: null },
        { id: 'custom-2', draft: '/o/blobs/sha256-x', target: '/l/t.gguf', verdict: null },
      ],
    };
    const pairs = runnablePairs(catalog, null, files);
    expect(pairs.map((p) => p.key)).toEqual(['custom:custom-1', 'model:/o/blobs/sha256-d', 'model:/l/t.gguf']);
    expect(pairs[0].label).toBe('qwen2.5-coder:0.5b → pub/t.gguf');
  });

  test('titles read like a sentence', () => {
    expect(pairTitle(pairs.find((p) => p.id === 'smollm2-135m-360m')!)).toBe('SmolLM2 135M → 362M');
    expect(pairTitle(pairs.find((p) => p.id === 'llama3.2-1b-llama3.1-8b')!)).toBe('Llama-3.2 1.2B → Llama-3.1 8B');
    expect(pairTitle(pairs.find((p) => p.id === 'qwen3-0.6b-1.7b')!)).toBe('Qwen3 596M → 1.7B');
    expect(pairTitle(pairs.find((p) => p.id === 'gemma3-1b-4b')!)).toBe('gemma-3 1B → 4.3B');
    expect(pairTitle(pairs.find((p) => p.id === 'gemma-2b-7b')!)).toBe('gemma 2.5B → 8.5B');
  });
});
