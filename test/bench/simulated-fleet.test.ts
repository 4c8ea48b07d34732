import { describe, expect, it } from "vitest";
import { blockHash, type TraceRequest } from "../../bench/mooncake-trace.js";
import { buildReplaySchedule, duplicateTrace } from "../../bench/replay-bench.js";
import { createRoundRobinPolicy, type RoutingPolicy } from "../../bench/routing-policies.js";
import {
  type PolicyContext,
  routableRequests,
  simulateRouting,
} from "../../bench/routing-simulation.js";
import {
  engineEvents,
  memoizedBlockHash,
  ReplicaCache,
  SimulatedFleet,
  serviceTimeMs,
} from "../../bench/simulated-fleet.js";
import { TraceClock } from "../../bench/trace-clock.js";
import { createCacheIndex } from "../../src/core/create-cache-index.js";
import type { ReplicaHint } from "../../src/core/types.js";

const SCOPE = { tenant: "t", model: "m", hashScheme: "s" };

function request(timestampMs: number, hashIds: number[], outputLength = 30): TraceRequest {
  return { timestampMs, inputLength: hashIds.length * 512, outputLength, hashIds };
}

describe("ReplicaCache", () => {
  it("stores the blocks of a request it serves, with their depth in the chain", () => {
    const cache = new ReplicaCache(8);
    const change = cache.serve([10, 11, 12]);
    expect(change.reusedBlocks).toBe(0);
    expect(change.stored).toEqual([
      { block: 10, depth: 0 },
      { block: 11, depth: 1 },
      { block: 12, depth: 2 },
    ]);
    expect(change.evicted).toEqual([]);
    expect([10, 11, 12].every((block) => cache.holds(block))).toBe(true);
  });

  it("reuses only the leading run of blocks it holds", () => {
    const cache = new ReplicaCache(8);
    cache.serve([1, 2, 3]);
    const change = cache.serve([1, 9, 3]);
    expect(change.reusedBlocks).toBe(1);
    expect(change.stored).toEqual([{ block: 9, depth: 1 }]);
    expect([1, 9, 3].every((block) => cache.holds(block))).toBe(true);
  });

  it("evicts the least recently used blocks past its capacity, a chain's tail before its head", () => {
    const cache = new ReplicaCache(4);
    cache.serve([1, 2, 3]);
    const change = cache.serve([1, 4, 5]);
    expect(change.evicted).toEqual([{ block: 3, depth: 2 }]);
    expect(cache.size).toBe(4);
    expect(cache.holds(2)).toBe(true);
    expect(cache.holds(3)).toBe(false);
  });

  it("stores only the head of a chain longer than its capacity", () => {
    const cache = new ReplicaCache(2);
    const change = cache.serve([1, 2, 3, 4]);
    expect(change.stored.map((held) => held.block)).toEqual([1, 2]);
    expect(change.evicted).toEqual([]);
    expect(cache.size).toBe(2);
  });
});

describe("engineEvents()", () => {
  it("publishes the evictions, then the new blocks with token counts from their depth", () => {
    const cache = new ReplicaCache(3);
    cache.serve([1, 2]);
    const events = engineEvents(cache.serve([1, 7, 8]), blockHash);
    expect(events).toEqual([
      { type: "prefix-evicted", prefixes: [{ prefixHash: blockHash(2), tokenCount: 1024 }] },
      {
        type: "prefix-added",
        prefixes: [
          { prefixHash: blockHash(7), tokenCount: 1024 },
          { prefixHash: blockHash(8), tokenCount: 1536 },
        ],
      },
    ]);
  });

  it("sends only a load update when nothing changed", () => {
    const cache = new ReplicaCache(4);
    cache.serve([1]);
    const stats = { activeRequests: 1, queuedRequests: 0, kvCacheUsage: 0.25 };
    expect(engineEvents(cache.serve([1]), blockHash, { stats })).toEqual([
      { type: "replica-updated", stats },
    ]);
  });

  it("keeps an index in step with the cache: evicted blocks are no longer hinted", () => {
    const index = createCacheIndex({ clock: new TraceClock(), ttlMs: 60_000 });
    const cache = new ReplicaCache(3);
    const hashOf = memoizedBlockHash();
    for (const chain of [
      [1, 2, 3],
      [4, 5],
    ]) {
      index.publish({
        ...SCOPE,
        replicaId: "r",
        events: engineEvents(cache.serve(chain), hashOf),
      });
    }
    const matched = (chain: number[]) =>
      index.lookup({
        ...SCOPE,
        prefixHashes: chain.map(hashOf),
        candidateReplicaIds: [],
        maxHints: 0,
      }).hints[0]?.matchedBlocks ?? 0;
    // [1, 2, 3] lost its tail (3, then 2) to make room for [4, 5].
    expect(matched([1, 2, 3])).toBe(1);
    expect(matched([4, 5])).toBe(2);
    expect(index.size().entries).toBe(3);
  });
});

describe("SimulatedFleet", () => {
  it("keeps a request in flight for its prefill of uncached tokens plus its decode", () => {
    const model = { prefillTokensPerSecond: 1024, decodeTokensPerSecond: 10 };
    // 2 of 4 blocks cached: 1,024 tokens to prefill (1 s) and 20 to decode (2 s).
    expect(serviceTimeMs(request(0, [1, 2, 3, 4], 20), 2, model)).toBe(3000);

    const fleet = new SimulatedFleet({ replicas: 2, capacityBlocks: 8, serviceModel: model });
    fleet.serve(1, request(0, [1, 2], 20), 0);
    expect(fleet.activeRequests(1)).toBe(1);
    expect(fleet.meanActiveRequests()).toBe(0.5);
    expect(fleet.advanceTo(2999)).toEqual([]);
    expect(fleet.advanceTo(3000)).toEqual([1]);
    expect(fleet.activeRequests(1)).toBe(0);
    expect(fleet.servedRequests(1)).toBe(1);
  });
});

describe("simulateRouting()", () => {
  it("counts a block reused only when the chosen replica held it as the request arrived", () => {
    const trace = [request(0, [1, 2, 3]), request(10, [1, 2, 4]), request(20, [5])];
    const result = simulateRouting({
      requests: routableRequests(trace),
      replicas: 1,
      capacityBlocks: 16,
      createPolicy: () => createRoundRobinPolicy(),
    });
    expect(result.requestedBlocks).toBe(7);
    expect(result.reusedBlocks).toBe(2);
    expect(result.hitRate).toBeCloseTo(2 / 7);
    expect(result.loadImbalance).toBe(1);
  });

  it("measures load imbalance as the most requests on one replica over the mean", () => {
    const trace = [request(0, [1]), request(1, [2]), request(2, [3])];
    const result = simulateRouting({
      requests: routableRequests(trace),
      replicas: 2,
      capacityBlocks: 16,
      createPolicy: () => ({ name: "always-0", choose: () => 0 }),
    });
    expect(result.loadImbalance).toBeCloseTo(3 / 1.5);
  });
});

/** Routes request i to `replicas[i]`; at the requests in `probes`, records the index's top hint first. */
function scriptedPolicy(replicas: number[], probes: ReadonlySet<number>) {
  const seen: (ReplicaHint | undefined)[] = [];
  let next = 0;
  const create = ({ index, scope }: PolicyContext): RoutingPolicy => ({
    name: "scripted",
    choose(request) {
      const at = next++;
      if (probes.has(at)) {
        const query = { ...scope, prefixHashes: request.prefixHashes, candidateReplicaIds: [] };
        seen.push(index.lookup({ ...query, maxHints: 1 }).hints[0]);
      }
      return replicas[at] as number;
    },
  });
  return { create, seen };
}

describe("simulateRouting(): the engines publish what vLLM's KV events carry", () => {
  it("stores only new blocks: a cache hit does not make the replica's copy fresher", () => {
    // Replica 0 stores block 1 at t=0, replica 1 at t=100; replica 0 reuses it at t=200. Engines
    // publish nothing for a hit, so at t=300 replica 1's copy is still the fresher one.
    const trace = [
      request(0, [1, 2]),
      request(100, [1, 3]),
      request(200, [1, 4]),
      request(300, [1]),
    ];
    const policy = scriptedPolicy([0, 1, 0, 0], new Set([3]));
    simulateRouting({
      requests: routableRequests(trace),
      replicas: 2,
      capacityBlocks: 16,
      createPolicy: policy.create,
    });
    expect(policy.seen.map((hint) => hint?.replicaId)).toEqual(["replica-1"]);
  });

  it("keeps a replica's blocks past the TTL while its stream is live, as the sidecar does", () => {
    // Replica 0 stores [1, 2] at t=0 and is sent nothing after; traffic to replica 1 moves the
    // clock (and the sweeps) on to 5 TTLs later.
    const trace = [request(0, [1, 2])];
    for (let t = 400; t <= 5_000; t += 400) trace.push(request(t, [100 + t]));
    trace.push(request(5_000, [1, 2, 3]));
    const probe = trace.length - 1;
    const policy = scriptedPolicy([0, ...trace.slice(1).map(() => 1)], new Set([probe]));
    simulateRouting({
      requests: routableRequests(trace),
      replicas: 2,
      capacityBlocks: 16,
      createPolicy: policy.create,
      ttlMs: 1_000,
      livenessWindowMs: 500,
      sweepIntervalMs: 100,
    });
    expect(policy.seen).toEqual([
      expect.objectContaining({ replicaId: "replica-0", matchedBlocks: 2 }),
    ]);
    // The sweeps confirmed the blocks again as they reached the TTL: less than a TTL old.
    expect(policy.seen[0]?.freshness).toBeGreaterThan(0.5);
  });

  it("forgets what a replica evicted", () => {
    const trace = [request(0, [1, 2]), request(10, [3, 4]), request(20, [1, 2])];
    const policy = scriptedPolicy([0, 0, 0], new Set([2]));
    simulateRouting({
      requests: routableRequests(trace),
      replicas: 1,
      capacityBlocks: 2,
      createPolicy: policy.create,
    });
    expect(policy.seen).toEqual([undefined]);
  });
});

describe("buildReplaySchedule()", () => {
  it("offsets every copy's block ids so copies share nothing, in timestamp order", () => {
    const copies = duplicateTrace([request(0, [0, 1]), request(5, [0, 2])], 2);
    expect(copies.map((r) => [r.timestampMs, ...r.hashIds])).toEqual([
      [0, 0, 1],
      [0, 3, 4],
      [5, 0, 2],
      [5, 3, 5],
    ]);
  });

  it("counts one store event per request with new blocks and one remove event per eviction", () => {
    const schedule = buildReplaySchedule({
      trace: [request(0, [1, 2, 3]), request(1, [1, 2, 3]), request(2, [4, 5])],
      workers: 1,
      capacityBlocks: 3,
      traceCopies: 1,
    });
    expect(schedule.totals).toMatchObject({
      lookups: 3,
      lookupBlocks: 8,
      storedEvents: 2,
      storedBlocks: 5,
      removedEvents: 1,
      removedBlocks: 2,
      batches: 2,
    });
    // The repeated request found its whole chain held: nothing to publish.
    expect(schedule.publications[1]).toBeUndefined();
  });
});
