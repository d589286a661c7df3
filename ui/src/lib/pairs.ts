// Pairs the Run and Compare views can use: catalog and custom pairs whose models are
// both downloaded (or are files other apps keep), and single models (plain and NASD need
// no draft).

import type { CatalogInfo, LocalFile, LocalModels, Pair } from '../ipc';
import { formatParams, shortRepo } from './format';

export interface RunnablePair {
  key: string;
  label: string;
  target: string;
  draft: string | null;
}

export function completeRepos(local: LocalModels | null): Set<string> {
  return new Set((local?.models ?? []).filter((m) => m.complete).map((m) => m.repo_id));
}

export function pairLabel(pair: Pair): string {
  return `${shortRepo(pair.draft.repo)} → ${shortRepo(pair.target.repo)}`;
}

/** A catalog pair's title: "SmolLM2 135M → 360M", "gemma-3 1B → 4.3B". */
export function pairTitle(pair: Pair): string {
  const family = (repo: string) =>
    shortRepo(repo)
      .replace(/-(Instruct|it)$/, '')
      .replace(/-\d+(\.\d+)?[BM]$/i, '');
  const df = family(pair.draft.repo);
  const tf = family(pair.target.repo);
  const d = formatParams(pair.draft.params);
  const t = formatParams(pair.target.params);
  return df === tf ? `${df} ${d} → ${t}` : `${df} ${d} → ${tf} ${t}`;
}

export function runnablePairs(catalog: CatalogInfo | null, local: LocalModels | null, files: LocalFile[] = []): RunnablePair[] {
  const have = completeRepos(local);
  // Other apps' GGUF files that Tandem can load, by path, shown by the name their app uses.
  const usable = files.filter((f) => f.problem === null);
  const name = (model: string) => usable.find((f) => f.path === model)?.name ?? shortRepo(model);
  const present = (model: string) => have.has(model) || usable.some((f) => f.path === model);
  const out: RunnablePair[] = [];
  for (const pair of catalog?.pairs ?? []) {
    if (have.has(pair.draft.repo) && have.has(pair.target.repo)) {
      out.push({ key: `pair:${pair.id}`, label: pairTitle(pair), target: pair.target.repo, draft: pair.draft.repo });
    }
  }
  for (const pair of catalog?.custom ?? []) {
    if (present(pair.draft) && present(pair.target) && pair.verdict?.ok !== false) {
      out.push({ key: `custom:${pair.id}`, label: `${name(pair.draft)} → ${name(pair.target)}`, target: pair.target, draft: pair.draft });
    }
  }
  for (const repo of have) {
    out.push({ key: `model:${repo}`, label: `${shortRepo(repo)} alone (plain, NASD)`, target: repo, draft: null });
  }
  for (const file of usable) {
    out.push({ key: `model:${file.path}`, label: `${file.name} alone (plain, NASD)`, target: file.path, draft: null });
  }
  return out;
}
