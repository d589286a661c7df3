// Realistic fixed data for the mocked backend: the real catalog, hardware, cache.

import catalogFile from '../../../crates/tandem-pairs/catalog.json';
import type { AppInfo, CatalogModel, Hardware, LocalFile, LocalModel, Pair } from '../ipc';

interface CatalogFile {
  about: string;
  models: CatalogModel[];
  pairs: Array<{ id: string; draft: string; target: string; note: string }>;
}

/** The shipped catalog.json, resolved into pairs as tandem-pairs does. */
export function catalogPairs(file: CatalogFile = catalogFile as CatalogFile): { about: string; pairs: Pair[] } {
  const byRepo = new Map(file.models.map((m) => [m.repo, m]));
  const pairs = file.pairs.map((p) => {
    const draft = byRepo.get(p.draft);
    const target = byRepo.get(p.target);
    if (!draft || !target) throw new Error(`catalog pair ${p.id} names an unknown model`);
    return { id: p.id, draft, target, note: p.note };
  });
  return { about: file.about, pairs };
}

export const GIB = 1024 ** 3;

export const LAPTOP: Hardware = {
  total_memory_bytes: 16 * GIB,
  available_memory_bytes: 11.2 * GIB,
  cpu_cores: 8,
  gpus: [],
  os: 'linux',
};

export const GPU_WORKSTATION: Hardware = {
  total_memory_bytes: 64 * GIB,
  available_memory_bytes: 51 * GIB,
  cpu_cores: 16,
  gpus: [{ name: 'NVIDIA GeForce RTX 4090', memory_bytes: 24 * GIB }],
  os: 'linux',
};

export function appInfo(hardware: Hardware, hasToken: boolean): AppInfo {
  const gpu = hardware.gpus.length > 0;
  return {
    version: '0.1.0',
    backends: gpu ? ['cpu', 'cuda'] : ['cpu'],
    hardware,
    hub_endpoint: 'https://huggingface.co',
    cache_dir: '/home/you/.cache/huggingface/hub',
    has_token: hasToken,
    history_dir: '/home/you/.local/share/tandem/history',
    notices: [],
  };
}

export function cachedModel(model: CatalogModel, fraction = 1): LocalModel {
  const size = Math.round(model.download_bytes * fraction);
  const folder = `models--${model.repo.replace('/', '--')}`;
  return {
    repo_id: model.repo,
    dir: `/home/you/.cache/huggingface/hub/${folder}`,
    size_on_disk: size,
    partial_bytes: fraction < 1 ? size : 0,
    complete: fraction >= 1,
  };
}

export const SAMPLE_PROMPTS = [
  'Explain speculative decoding in two sentences.',
  'Write a short poem about two minds working at one desk.',
  'Explain why a small model can speed up a big one.',
];

/** GGUF files as LM Studio and Ollama keep them on a typical computer. */
export const LOCAL_FILES: LocalFile[] = [
  {
    source: 'lm_studio',
    name: 'lmstudio-community/Qwen2.5-Coder-1.5B-Instruct-GGUF/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf',
    path: '/home/you/.lmstudio/models/lmstudio-community/Qwen2.5-Coder-1.5B-Instruct-GGUF/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf',
    size_bytes: 986_048_800,
    architecture: 'qwen2',
    precision: 'Q4_K_M',
    problem: null,
  },
  {
    source: 'ollama',
    name: 'qwen2.5-coder:0.5b',
    path: '/home/you/.ollama/models/blobs/sha256-828125e28bf46a219fa4f75b6982cb0c41fd9187467abe91c9b175287945b7ce',
    size_bytes: 397_807_936,
    architecture: 'qwen2',
    precision: 'Q4_K_M',
    problem: null,
  },
  {
    source: 'ollama',
    name: 'llava:7b',
    path: '/home/you/.ollama/models/blobs/sha256-72d6f08a42f656d36b356dbe0920675899a99ce21192fd66266fb7d82ed07539',
    size_bytes: 624_434_368,
    architecture: 'clip',
    precision: 'F16',
    problem: 'a vision projector (mmproj), not a language model',
  },
];
