// Pairs the Run and Compare views can use: catalog and custom pairs whose models are
// both downloaded, and single downloaded models (plain and NASD need no draft).

import type { CatalogInfo, LocalModels, Pair } from '../ipc';
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

/** A catalog pair's title: "SmolLM2 135M → 360M". */
export function pairTitle(pair: Pair): string {
  const family = (repo: string) => shortRepo(repo).replace(/-Instruct$/, '').replace(/-\d+(\.\d+)?[BM]$/i, '');
  const df = family(pair.draft.repo);
  const tf = family(pair.target.repo);
  const d = formatParams(pair.draft.params);
  const t = formatParams(pair.target.params);
  return df === tf ? `${df} ${d} → ${t}` : `${df} ${d} → ${tf} ${t}`;
}

export function runnablePairs(catalog: CatalogInfo | null, local: LocalModels | null): RunnablePair[] {
  const have = completeRepos(local);
  const out: RunnablePair[] = [];
  const seen = new Set<string>();
  for (const pair of catalog?.pairs ?? []) {
    if (have.has(pair.draft.repo) && have.has(pair.target.repo)) {
      out.push({ key: `pair:${pair.id}`, label: pairTitle(pair), target: pair.target.repo, draft: pair.draft.repo });
      seen.add(pair.target.repo);
    }
  }
  for (const pair of catalog?.custom ?? []) {
    if (have.has(pair.draft) && have.has(pair.target) && pair.verdict?.ok !== false) {
      out.push({ key: `custom:${pair.id}`, label: `${shortRepo(pair.draft)} → ${shortRepo(pair.target)}`, target: pair.target, draft: pair.draft });
    }
  }
  for (const repo of have) {
    out.push({ key: `model:${repo}`, label: `${shortRepo(repo)} alone (plain, NASD)`, target: repo, draft: null });
  }
  return out;
}
