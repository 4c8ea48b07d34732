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

/** The most scheme names {@link schemesPresentDetail} lists. */
export const LISTED_SCHEMES = 8;

/**
 * The detail of a lookup whose tenant and model have no entries under its hash scheme: the schemes
 * that have some, to expose a scheme mismatch. It lists the first LISTED_SCHEMES names in sort
 * order and counts the rest, so that the answer stays small however many schemes a scope holds
 * (a replica may use 8, but replicas are many). Cost: O(schemes), nothing sorted.
 */
export function schemesPresentDetail(present: Iterable<string>): string {
  // The first names in sort order, kept sorted; a name that sorts after all of them when the list
  // is full is only counted.
  const first: string[] = [];
  let count = 0;
  for (const name of present) {
    count++;
    const full = first.length === LISTED_SCHEMES;
    if (full && name >= (first[LISTED_SCHEMES - 1] as string)) continue;
    let i = full ? LISTED_SCHEMES - 1 : first.length;
    for (; i > 0 && (first[i - 1] as string) > name; i--) first[i] = first[i - 1] as string;
    first[i] = name;
  }
  if (count === 0) return "no entries for this tenant and model";
  const more = count > first.length ? ` and ${count - first.length} more` : "";
  return `no entries under this hash_scheme; schemes present: ${first.join(", ")}${more}`;
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
