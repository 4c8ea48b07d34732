import type { ReplicaStats } from "./types.js";

/** What ranking looks at: a hint, or an engine's candidate before it becomes one. */
export interface Ranked {
  readonly replicaId: string;
  readonly score: number;
  readonly stats: ReplicaStats | undefined;
}

/**
 * How fresh knowledge confirmed `ageMs` ago is: 1 when just confirmed, falling linearly to 0.5 at
 * the TTL (the oldest age still returned). Never 0, so a match still ranks by its tokens when old;
 * a negative age (a clock that stepped back) counts as fresh.
 */
export function freshnessAt(ageMs: number, ttlMs: number): number {
  const ratio = ageMs <= 0 ? 0 : ageMs >= ttlMs ? 1 : ageMs / ttlMs;
  return 1 - ratio / 2;
}

/** The load a tie is broken on: requests running plus waiting; unknown stats count as idle. */
export function loadOf(stats: ReplicaStats | undefined): number {
  return stats === undefined ? 0 : stats.activeRequests + stats.queuedRequests;
}

/**
 * Orders hints best first: higher score, then lower load, then replica id, so equal knowledge
 * always yields the same answer.
 */
export function compareHints(a: Ranked, b: Ranked): number {
  if (a.score !== b.score) return b.score - a.score;
  const load = loadOf(a.stats) - loadOf(b.stats);
  if (load !== 0) return load;
  return a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0;
}

/**
 * Inserts `candidate` into `best`, which is kept sorted by {@link compareHints} and at most `limit`
 * long. Selecting the top k this way costs O(n k) for n candidates, against O(n log n) to sort them
 * all, and k (max_hints) is small while n (replicas holding block 0) can be the whole fleet.
 */
export function insertTopK<T extends Ranked>(best: T[], candidate: T, limit: number): void {
  if (best.length === limit && compareHints(candidate, best[limit - 1] as T) >= 0) return;
  let i = best.length < limit ? best.length : limit - 1;
  while (i > 0 && compareHints(candidate, best[i - 1] as T) < 0) {
    best[i] = best[i - 1] as T;
    i--;
  }
  best[i] = candidate;
}
