import { describe, expect, it } from "vitest";
import type { TraceRequest } from "../../bench/mooncake-trace.js";
import {
  createApproximatePrefixPolicy,
  createIndexHintsPolicy,
  createLeastLoadedPolicy,
  createRandomPolicy,
  createRoundRobinPolicy,
  type FleetView,
  type RoutableRequest,
} from "../../bench/routing-policies.js";
import { routableRequests } from "../../bench/routing-simulation.js";
import { engineEvents, memoizedBlockHash, ReplicaCache } from "../../bench/simulated-fleet.js";
import { TraceClock } from "../../bench/trace-clock.js";
import type { CacheIndex } from "../../src/core/cache-index.js";
import { createCacheIndex } from "../../src/core/create-cache-index.js";

const SCOPE = { tenant: "t", model: "m", hashScheme: "s" };
const REPLICA_IDS = ["replica-0", "replica-1", "replica-2", "replica-3"];

/** A fleet whose load the test sets by hand. */
function fleetWith(loads: number[]): FleetView {
  return {
    replicaCount: loads.length,
    activeRequests: (replica) => loads[replica] ?? 0,
    meanActiveRequests: () => loads.reduce((sum, load) => sum + load, 0) / loads.length,
  };
}

function routable(...hashIds: number[]): RoutableRequest {
  const request: TraceRequest = { timestampMs: 0, inputLength: 0, outputLength: 0, hashIds };
  return routableRequests([request])[0] as RoutableRequest;
}

/** An index in which `replica` holds `chain` and reports `activeRequests`. */
function indexWhere(holdings: { replica: number; chain: number[]; activeRequests: number }[]) {
  const index = createCacheIndex({ clock: new TraceClock(), ttlMs: 60_000 });
  const hashOf = memoizedBlockHash();
  for (const { replica, chain, activeRequests } of holdings) {
    const stats = { activeRequests, queuedRequests: 0, kvCacheUsage: 0.5 };
    index.publish({
      ...SCOPE,
      replicaId: REPLICA_IDS[replica] as string,
      events: engineEvents(new ReplicaCache(64).serve(chain), hashOf, { stats }),
    });
  }
  return index;
}

function hintsPolicy(index: CacheIndex) {
  return createIndexHintsPolicy({ index, scope: SCOPE, replicaIds: REPLICA_IDS });
}

describe("load-only policies", () => {
  it("random makes the same choices for the same seed, and different ones for another", () => {
    const fleet = fleetWith(new Array(100).fill(0));
    const choices = (seed: number) => {
      const policy = createRandomPolicy(seed);
      return Array.from({ length: 20 }, () => policy.choose(routable(1), fleet));
    };
    expect(choices(7)).toEqual(choices(7));
    expect(choices(7)).not.toEqual(choices(8));
    expect(choices(7).every((replica) => replica >= 0 && replica < 100)).toBe(true);
  });

  it("round-robin takes the replicas in turn", () => {
    const policy = createRoundRobinPolicy();
    const fleet = fleetWith([0, 0, 0]);
    expect(Array.from({ length: 4 }, () => policy.choose(routable(1), fleet))).toEqual([
      0, 1, 2, 0,
    ]);
  });

  it("least-loaded picks the replica with the fewest requests in flight", () => {
    expect(createLeastLoadedPolicy().choose(routable(1), fleetWith([3, 1, 2, 1]))).toBe(1);
  });

  it("least-loaded spreads ties instead of always taking the first", () => {
    const policy = createLeastLoadedPolicy();
    const fleet = fleetWith([0, 0, 0, 0]);
    const choices = Array.from({ length: 4 }, () => policy.choose(routable(1), fleet));
    expect(new Set(choices).size).toBe(4);
  });
});

describe("createApproximatePrefixPolicy()", () => {
  it("sends a request where it sent the longest run of its prefix before", () => {
    const policy = createApproximatePrefixPolicy({ replicas: 4 });
    policy.routed?.(routable(1, 2), 0);
    policy.routed?.(routable(1, 2, 3, 4), 2);
    expect(policy.choose(routable(1, 2, 3, 9), fleetWith([0, 0, 5, 0]))).toBe(2);
  });

  it("sends a request matching nothing to the least loaded", () => {
    const policy = createApproximatePrefixPolicy({ replicas: 4 });
    policy.routed?.(routable(1, 2), 0);
    expect(policy.choose(routable(7, 8), fleetWith([0, 2, 1, 3]))).toBe(0);
    expect(policy.choose(routable(7, 8), fleetWith([4, 2, 1, 3]))).toBe(2);
  });

  it("forgets what it sent past its assumed capacity, though the replica may still hold it", () => {
    const policy = createApproximatePrefixPolicy({ replicas: 2, assumedCapacityBlocks: 2 });
    policy.routed?.(routable(1, 2), 1);
    policy.routed?.(routable(5, 6), 1);
    expect(policy.choose(routable(1, 2), fleetWith([0, 1]))).toBe(0);
  });

  it("told a replica's true capacity, believes exactly what the replica's LRU cache holds", () => {
    const policy = createApproximatePrefixPolicy({
      replicas: 2,
      assumedCapacityBlocks: 3,
      name: "approximate, exact capacity",
    });
    const cache = new ReplicaCache(3);
    for (const chain of [
      [1, 2],
      [1, 3],
      [4, 5],
      [1, 2],
    ]) {
      policy.routed?.(routable(...chain), 1);
      cache.serve(chain);
    }
    expect(policy.name).toBe("approximate, exact capacity");
    // The cache now holds 4, 2 and 1 (3 and 5 evicted), and the policy believes just that.
    expect([1, 2, 3, 4, 5].map((block) => cache.holds(block))).toEqual([
      true,
      true,
      false,
      true,
      false,
    ]);
    expect(policy.choose(routable(4, 5), fleetWith([0, 1]))).toBe(1);
    expect(policy.choose(routable(3), fleetWith([0, 1]))).toBe(0);
    expect(policy.choose(routable(5), fleetWith([0, 1]))).toBe(0);
  });

  it("with an overload factor, skips an overloaded match for the least loaded", () => {
    const policy = createApproximatePrefixPolicy({ replicas: 4, overloadFactor: 2 });
    policy.routed?.(routable(1, 2), 3);
    // Mean load 3: the threshold is 6.
    expect(policy.choose(routable(1, 2), fleetWith([2, 1, 3, 6]))).toBe(3);
    expect(policy.choose(routable(1, 2), fleetWith([2, 1, 2, 7]))).toBe(1);
  });
});

describe("createIndexHintsPolicy()", () => {
  it("picks the replica the index says holds the longest run of the prefix", () => {
    const index = indexWhere([
      { replica: 1, chain: [1, 2], activeRequests: 0 },
      { replica: 3, chain: [1, 2, 3], activeRequests: 1 },
    ]);
    expect(hintsPolicy(index).choose(routable(1, 2, 3, 4), fleetWith([0, 0, 0, 1]))).toBe(3);
  });

  it("falls back to the least loaded when the hinted replica reports overload", () => {
    // Mean load 2 over the fleet: the threshold is 4, and the holder reports 5.
    const index = indexWhere([{ replica: 2, chain: [1, 2, 3], activeRequests: 5 }]);
    expect(hintsPolicy(index).choose(routable(1, 2, 3), fleetWith([1, 2, 5, 0]))).toBe(3);
  });

  it("reads the hinted replica's load from the hint, not from the gateway's own count", () => {
    const index = indexWhere([{ replica: 2, chain: [1, 2, 3], activeRequests: 1 }]);
    expect(hintsPolicy(index).choose(routable(1, 2, 3), fleetWith([1, 2, 5, 0]))).toBe(2);
  });

  it("breaking ties by load, takes the least loaded of the longest matches, however fresh", () => {
    const clock = new TraceClock();
    const index = createCacheIndex({ clock, ttlMs: 60_000 });
    const hashOf = memoizedBlockHash();
    const holds = (replica: number, chain: number[], activeRequests: number) =>
      index.publish({
        ...SCOPE,
        replicaId: REPLICA_IDS[replica] as string,
        events: engineEvents(new ReplicaCache(64).serve(chain), hashOf, {
          stats: { activeRequests, queuedRequests: 0, kvCacheUsage: 0.5 },
        }),
      });
    holds(1, [1, 2], 1);
    holds(3, [1], 0); // a shorter match, however idle
    clock.advanceTo(1_000);
    holds(0, [1, 2], 2); // fresher, so the index ranks it first
    holds(2, [1, 2], 3);
    const fleet = fleetWith([2, 1, 3, 0]);
    expect(hintsPolicy(index).choose(routable(1, 2, 9), fleet)).toBe(0);
    const byLoad = createIndexHintsPolicy({
      index,
      scope: SCOPE,
      replicaIds: REPLICA_IDS,
      tiesByLoad: true,
    });
    expect(byLoad.name).toBe("index-hints, ties by load");
    expect(byLoad.choose(routable(1, 2, 9), fleet)).toBe(1);
  });

  it("goes to the least loaded when the index knows nothing of the prefix", () => {
    const index = indexWhere([{ replica: 2, chain: [1, 2, 3], activeRequests: 0 }]);
    expect(hintsPolicy(index).choose(routable(9), fleetWith([1, 0, 0, 1]))).toBe(1);
    expect(hintsPolicy(index).choose(routable(9), fleetWith([1, 1, 1, 0]))).toBe(3);
  });
});
