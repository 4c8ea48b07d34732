import type { CacheIndex } from "../src/core/cache-index.js";
import type { PrefixHash, ReplicaId, RouteQuery } from "../src/core/types.js";
import type { TraceRequest } from "./mooncake-trace.js";
import { createSeededRandom } from "./seeded-random.js";
import { ReplicaCache } from "./simulated-fleet.js";

/**
 * The routing policies the simulator compares: what a gateway could do with, and without, the
 * index. Replicas are numbered 0 to n-1.
 */

/** A trace request with its prefix hashes built once, as a gateway would hash the prompt. */
export interface RoutableRequest extends TraceRequest {
  /** One per block of `hashIds`, head first. */
  readonly prefixHashes: readonly PrefixHash[];
}

/** What a gateway knows of the fleet without asking anyone: the requests it has in flight. */
export interface FleetView {
  readonly replicaCount: number;
  activeRequests(replica: number): number;
  meanActiveRequests(): number;
}

/** Picks a replica for each request. Stateful: one instance per simulated gateway. */
export interface RoutingPolicy {
  readonly name: string;
  choose(request: RoutableRequest, fleet: FleetView): number;
  /** Told where each request went, after `choose`; policies that learn from their own decisions listen. */
  routed?(request: RoutableRequest, replica: number): void;
}

/**
 * The least-loaded replica (fewest requests in flight), among `candidates` when given. Ties go to
 * the first tied replica at or after a cursor that moves on every pick, so an idle fleet is used
 * evenly instead of always starting from replica 0.
 */
export class LeastLoadedPicker {
  #cursor = 0;

  pick(fleet: FleetView, candidates?: readonly number[]): number {
    const count = candidates === undefined ? fleet.replicaCount : candidates.length;
    if (count === 0) throw new RangeError("no replica to pick from");
    const start = this.#cursor++ % count;
    let best = -1;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let k = 0; k < count; k++) {
      const at = (start + k) % count;
      const replica = candidates === undefined ? at : (candidates[at] as number);
      const load = fleet.activeRequests(replica);
      if (load < bestLoad) {
        best = replica;
        bestLoad = load;
      }
    }
    return best;
  }
}

/** Uniformly at random, from a seeded PRNG: the same choices on every run. @default seed 1 */
export function createRandomPolicy(seed = 1): RoutingPolicy {
  const random = createSeededRandom(seed);
  return { name: "random", choose: (_request, fleet) => random.nextInt(fleet.replicaCount) };
}

/** Replica 0, 1, ..., n-1, 0, ... */
export function createRoundRobinPolicy(): RoutingPolicy {
  let next = 0;
  return { name: "round-robin", choose: (_request, fleet) => next++ % fleet.replicaCount };
}

/** The replica with the fewest requests in flight (ties rotate, see {@link LeastLoadedPicker}). */
export function createLeastLoadedPolicy(): RoutingPolicy {
  const picker = new LeastLoadedPicker();
  return { name: "least-loaded", choose: (_request, fleet) => picker.pick(fleet) };
}

/**
 * Whether a replica with `load` requests in flight is overloaded: more than `factor` times the
 * fleet's mean, the mean floored at 1 so that on an almost idle fleet a replica serving one or two
 * requests does not count as overloaded.
 */
export function isOverloaded(load: number, fleet: FleetView, factor: number): boolean {
  return load > factor * Math.max(1, fleet.meanActiveRequests());
}

/** Options of {@link createApproximatePrefixPolicy}. */
export interface ApproximatePrefixOptions {
  readonly replicas: number;
  /** The policy's name in results. @default "approximate" */
  readonly name?: string;
  /**
   * How many blocks the policy believes each replica keeps: its configured guess, not the real
   * capacity (which it cannot see). @default APPROXIMATE_ASSUMED_CAPACITY_BLOCKS
   */
  readonly assumedCapacityBlocks?: number;
  /**
   * When set, the replica chosen for its prefix is skipped for the least loaded if it is
   * overloaded (see {@link isOverloaded}). Unset, nothing stops every request sharing a head block
   * from going to one replica. @default undefined
   */
  readonly overloadFactor?: number;
}

/**
 * The Gateway API inference extension prefix scorer's default LRU capacity, 31,250 blocks of 64
 * characters per server (its example for an 80 GB H100), in trace blocks: at ~4 characters per
 * token that is 500,000 tokens, 977 blocks of 512 tokens.
 */
export const APPROXIMATE_ASSUMED_CAPACITY_BLOCKS = 977;

/**
 * Approximate prefix routing, like the Gateway API inference extension's prefix scorer: it learns
 * only from its own decisions, keeping per replica an LRU of the blocks it sent there (capped at
 * the assumed capacity), and picks the replica with the longest run of leading blocks sent there;
 * ties, and requests matching nothing, go to the least loaded (and, with `overloadFactor`, so does a
 * request whose chosen replica is overloaded). It cannot see evictions, so it is wrong exactly when
 * its assumed capacity is.
 */
export function createApproximatePrefixPolicy(options: ApproximatePrefixOptions): RoutingPolicy {
  const believed = Array.from(
    { length: options.replicas },
    () => new ReplicaCache(options.assumedCapacityBlocks ?? APPROXIMATE_ASSUMED_CAPACITY_BLOCKS),
  );
  const picker = new LeastLoadedPicker();
  const longest: number[] = [];
  return {
    name: options.name ?? "approximate",
    choose(request, fleet) {
      let best = 0;
      longest.length = 0;
      for (let replica = 0; replica < believed.length; replica++) {
        const matched = (believed[replica] as ReplicaCache).reusablePrefix(request.hashIds);
        if (matched === 0 || matched < best) continue;
        if (matched > best) {
          best = matched;
          longest.length = 0;
        }
        longest.push(replica);
      }
      if (best === 0) return picker.pick(fleet);
      const replica = picker.pick(fleet, longest);
      const { overloadFactor } = options;
      if (overloadFactor === undefined) return replica;
      return isOverloaded(fleet.activeRequests(replica), fleet, overloadFactor)
        ? picker.pick(fleet)
        : replica;
    },
    routed(request, replica) {
      believed[replica]?.serve(request.hashIds);
    },
  };
}

/** Options of {@link createIndexHintsPolicy}. */
export interface IndexHintsOptions {
  /** The index the fleet's events feed. */
  readonly index: CacheIndex;
  readonly scope: { readonly tenant: string; readonly model: string; readonly hashScheme: string };
  /** Replica i's id in the index. */
  readonly replicaIds: readonly ReplicaId[];
  /** The hinted replica is skipped for the least loaded when overloaded (see {@link isOverloaded}). @default 2 */
  readonly overloadFactor?: number;
  /**
   * Ask for the most hints (64) and take the least loaded (the gateway's own count, ties rotating)
   * of those matching as many tokens as the top one, instead of the top hint: the gateway breaks
   * the index's ties on freshness by load. @default false
   */
  readonly tiesByLoad?: boolean;
}

/** The most hints a lookup returns, asked for by a policy that breaks ties itself. */
const MAX_HINTS = 64;

/**
 * Routing on the index's answer: `LookupRoute`'s top hint (the replica holding the longest, freshest
 * run of the prefix; equal scores to the less loaded), or with `tiesByLoad` the least loaded of the
 * hints that match as many tokens; unless there is no hint, or the chosen hint's reported load (its
 * stats' active requests) makes it overloaded: then the least loaded.
 */
export function createIndexHintsPolicy(options: IndexHintsOptions): RoutingPolicy {
  const { index, scope } = options;
  const overloadFactor = options.overloadFactor ?? 2;
  const replicaOf = new Map(options.replicaIds.map((id, replica) => [id, replica]));
  const picker = new LeastLoadedPicker();
  const tied: number[] = [];
  const tiesByLoad = options.tiesByLoad ?? false;
  return {
    name: tiesByLoad ? "index-hints, ties by load" : "index-hints",
    choose(request, fleet) {
      const query: RouteQuery = {
        ...scope,
        prefixHashes: request.prefixHashes,
        candidateReplicaIds: [],
        maxHints: tiesByLoad ? MAX_HINTS : 1,
      };
      const { hints } = index.lookup(query);
      let hint = hints[0];
      if (tiesByLoad && hint !== undefined) {
        tied.length = 0;
        for (const h of hints) {
          const replica = replicaOf.get(h.replicaId);
          if (h.matchedTokens === hint.matchedTokens && replica !== undefined) tied.push(replica);
        }
        if (tied.length > 0) {
          const chosen = picker.pick(fleet, tied);
          hint = hints.find((h) => replicaOf.get(h.replicaId) === chosen);
        }
      }
      const replica = hint === undefined ? undefined : replicaOf.get(hint.replicaId);
      if (hint === undefined || replica === undefined) return picker.pick(fleet);
      const load = hint.stats?.activeRequests ?? fleet.activeRequests(replica);
      return isOverloaded(load, fleet, overloadFactor) ? picker.pick(fleet) : replica;
    },
  };
}
