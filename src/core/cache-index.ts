import type {
  CacheReport,
  EventBatch,
  IndexSize,
  PublishOutcome,
  ReplicaRef,
  ReportOutcome,
  RouteAnswer,
  RouteQuery,
  ScopeQuery,
  ScopeState,
  SweepOutcome,
} from "./types.js";

/**
 * The soft-state index of which replica holds which prefix blocks: the one swap point between the
 * storage engine and everything else. Every implementation runs the same contract suite
 * (`test/core/cache-index-contract.ts`).
 *
 * Invariants every implementation keeps:
 * - Entries are keyed by (tenant, model, hashScheme, prefixHash, replica); nothing written in one
 *   (tenant, model, hashScheme) is visible from another.
 * - An entry whose age exceeds the TTL is never returned, swept or not; age exactly equal to the TTL
 *   is still live. The one exception: entries of a replica kept alive ({@link CacheIndex.keepAlive}).
 * - The number of holder entries never exceeds `maxEntries`: inserting past it evicts the least
 *   recently confirmed entries first.
 * - Every method runs to completion synchronously, so a lookup never sees half of a write; a write
 *   that fails validation changes nothing.
 */
export interface CacheIndex {
  /**
   * Adds or refreshes a replica's prefixes and applies its stats. Never removes.
   * Cost: O(prefixes) amortised. Throws {@link IndexError} (`invalid-argument`) for a missing
   * tenant, model or replica id, or invalid stats; per-prefix problems are dropped and counted.
   */
  report(report: CacheReport): ReportOutcome;

  /**
   * Applies a replica's events in order. Cost: O(prefixes in the events), plus O(holdings of the
   * replica) per `all-cleared`. Throws like {@link CacheIndex.report}, before applying anything.
   */
  publish(batch: EventBatch): PublishOutcome;

  /**
   * Ranks replicas by the run of leading blocks they hold. Pure: no side effects, never throws for
   * content problems. Cost: O(sum over evaluated depths of the replicas still matching) plus
   * O(h x k) to pick the best k of the h replicas holding the head (k = max_hints, clamped).
   *
   * The answer is the caller's to keep, unless `reuse` is true: an engine may then hand back an
   * answer (its list and its hints) that it overwrites at its next lookup with `reuse`. That is for
   * a caller done with each answer before it looks up again, such as a server that encodes every
   * response at once: on the request path of every call, objects made anew for each answer are
   * garbage that the process pays for in collections. A reused answer keeps the replica ids and
   * stats it names reachable until it is overwritten.
   */
  lookup(query: RouteQuery, reuse?: boolean): RouteAnswer;

  /** Describes one (tenant, model). Cost: O(replicas + schemes) of that scope. Throws for a missing tenant or model. */
  describe(query: ScopeQuery): ScopeState;

  /**
   * Marks a replica whose holdings are vouched for by a live event stream: until `until` (index
   * clock), its entries do not expire, and a sweep confirms again (as of the sweep) those that reach
   * the TTL. Once `until` has passed, the TTL applies from each entry's last confirmation. A later
   * call replaces the deadline. It covers every entry of the replica under its (tenant, model),
   * in every scheme, whichever call wrote it. Unknown replicas are ignored. Cost: O(1).
   */
  keepAlive(replica: ReplicaRef, until: number): void;

  /**
   * Removes expired entries (oldest first), confirming again instead those of replicas kept alive
   * (which counts as hearing from the replica),
   * then replicas silent past the TTL that hold nothing, and scopes left empty: `budget` entries
   * and replicas at most. Cost: O(budget).
   */
  sweep(budget: number): SweepOutcome;

  /** Index-wide sizes. Cost: O(tenants x models x schemes): for scrapes, not for every request. */
  size(): IndexSize;
}
