import { describe, expect, it } from "vitest";
import { blockHash, type TraceRequest } from "../../bench/mooncake-trace.js";
import { buildReplaySchedule, duplicateTrace } from "../../bench/replay-bench.js";
import { createRoundRobinPolicy } from "../../bench/routing-policies.js";
import { routableRequests, simulateRouting } from "../../bench/routing-simulation.js";
import {
  engineEvents,
  memoizedBlockHash,
  ReplicaCache,
  SimulatedFleet,
  serviceTimeMs,
} from "../../bench/simulated-fleet.js";
import { TraceClock } from "../../bench/trace-clock.js";
import { createCacheIndex } from "../../src/core/create-cache-index.js";

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
    expect(change.refreshed.map((held) => held.block)).toEqual([1, 3]);
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

  it("re-confirms the blocks already held when asked, and puts the stats on the last event", () => {
    const cache = new ReplicaCache(4);
    cache.serve([1, 2]);
    const stats = { activeRequests: 2, queuedRequests: 0, kvCacheUsage: 0.75 };
    const events = engineEvents(cache.serve([1, 2, 3]), blockHash, {
      includeRefreshed: true,
      stats,
    });
    expect(events).toHaveLength(1);
    const [added] = events;
    expect(added?.type).toBe("prefix-added");
    expect(added && "prefixes" in added ? added.prefixes.map((p) => p.tokenCount) : []).toEqual([
      512, 1024, 1536,
    ]);
    expect(added && "stats" in added ? added.stats : undefined).toEqual(stats);
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
