import type { ReplicaHint } from "./types.js";

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
function loadOf(hint: ReplicaHint): number {
  return hint.stats === undefined ? 0 : hint.stats.activeRequests + hint.stats.queuedRequests;
}

/**
 * Orders hints best first: higher score, then lower load, then replica id, so equal knowledge
 * always yields the same answer.
 */
export function compareHints(a: ReplicaHint, b: ReplicaHint): number {
  if (a.score !== b.score) return b.score - a.score;
  const load = loadOf(a) - loadOf(b);
  if (load !== 0) return load;
  return a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0;
}
