import { nameProblem, prefixHashProblem } from "./request-validation.js";
import type { ReplicaStats, RouteAnswer, RouteQuery } from "./types.js";

/**
 * Checks a lookup before any engine reads its index: names, scheme, max_hints, and every evaluated
 * hash.
 * Returns the answer for a query that cannot be evaluated, or how many blocks of the chain to
 * evaluate: its length, cut to `maxChainLength` (the chain is truncated when that is less than its
 * length). A number rather than an object, so that a lookup that goes on allocates nothing here.
 * Cost: O(evaluated blocks).
 */
export function checkRouteQuery(query: RouteQuery, maxChainLength: number): RouteAnswer | number {
  const invalid =
    nameProblem("tenant", query.tenant, true) ??
    nameProblem("model", query.model, true) ??
    nameProblem("hash_scheme", query.hashScheme, false);
  if (invalid) return noHint("invalid-request", invalid.field, 0, false, invalid.message);
  if (query.hashScheme === "") {
    return noHint("hash-scheme-missing", "", 0, false, "hash_scheme is required");
  }
  const { maxHints } = query;
  if (!(Number.isInteger(maxHints) && maxHints >= 0)) {
    const message = `max_hints must be a non-negative integer, got ${maxHints}`;
    return noHint("invalid-request", "max_hints", 0, false, message);
  }
  const { prefixHashes } = query;
  if (prefixHashes.length === 0) {
    return noHint("invalid-request", "prefix_hashes", 0, false, "prefix_hashes is empty");
  }
  const truncated = prefixHashes.length > maxChainLength;
  const depth = truncated ? maxChainLength : prefixHashes.length;
  for (let i = 0; i < depth; i++) {
    const problem = prefixHashProblem(prefixHashes[i] as Uint8Array);
    if (problem !== undefined) {
      const field = `prefix_hashes[${i}]`;
      const why = problem === "prefix-hash-empty" ? "empty" : "longer than 64 bytes";
      return noHint("invalid-request", field, 0, truncated, `${field} is ${why}`);
    }
  }
  return depth;
}

/** An answer without hints. */
export function noHint(
  reason: RouteAnswer["reason"],
  invalidField: string,
  evaluatedBlocks: number,
  chainTruncated: boolean,
  detail: string,
): RouteAnswer {
  return { reason, hints: [], invalidField, chainTruncated, evaluatedBlocks, detail };
}

/** A copy of reported stats, so that the index never holds the caller's object. */
export function copyStats(stats: ReplicaStats): ReplicaStats {
  return {
    activeRequests: stats.activeRequests,
    queuedRequests: stats.queuedRequests,
    kvCacheUsage: stats.kvCacheUsage,
  };
}
