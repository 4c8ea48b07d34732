import { beforeEach, describe, expect, it } from "vitest";
import type { CacheIndex } from "../../src/core/cache-index.js";
import { createCacheIndex } from "../../src/core/create-cache-index.js";
import type { IndexError } from "../../src/core/index-error.js";
import type { EventBatch, ReplicaHint } from "../../src/core/types.js";
import {
  createIndexKvEventSink,
  MAX_LORA_ADAPTERS_PER_REPLICA,
  tierOfMedium,
} from "../../src/kv-events/index-kv-event-sink.js";
import type { KvEventSink } from "../../src/kv-events/kv-event-sink.js";
import type {
  BlockRemovedEvent,
  BlockStoredEvent,
  KvEvent,
  KvEventBatch,
} from "../../src/kv-events/kv-event-types.js";
import { chainOf, hashOf } from "../support/hashes.js";
import { kvEventSource } from "../support/kv-event-source.js";
import { ManualClock } from "../support/manual-clock.js";

const TTL = 60_000;
const SOURCE = kvEventSource({ name: "pod-7", replicaId: "pod-7" });

function stored(first: number, length: number, extra: Partial<BlockStoredEvent> = {}) {
  const event: BlockStoredEvent = {
    type: "BlockStored",
    blockHashes: chainOf(first, length),
    parentBlockHash: first === 1 ? undefined : hashOf(first - 1),
    tokenCount: length * 16,
    blockSize: 16,
    loraId: undefined,
    medium: "GPU",
    loraName: undefined,
    groupIdx: undefined,
    kvCacheSpecKind: undefined,
    ...extra,
  };
  return event;
}

function removed(first: number, length: number, medium = "GPU"): BlockRemovedEvent {
  return { type: "BlockRemoved", blockHashes: chainOf(first, length), medium, groupIdx: undefined };
}

function batchOf(events: KvEvent[], dataParallelRank?: number): KvEventBatch {
  return { ts: 1_700_000_000, events, dataParallelRank, skippedEvents: 0 };
}

describe("createIndexKvEventSink()", () => {
  let clock: ManualClock;
  let index: CacheIndex;
  let sink: KvEventSink;
  let rejected: IndexError[];
  /** Every batch the sink published to the index, in order. */
  let published: EventBatch[];

  beforeEach(() => {
    clock = new ManualClock();
    index = createCacheIndex({ clock, ttlMs: TTL });
    rejected = [];
    published = [];
    const recording = {
      publish: (batch: EventBatch) => {
        published.push(batch);
        return index.publish(batch);
      },
      keepAlive: index.keepAlive.bind(index),
    };
    sink = createIndexKvEventSink({
      index: recording,
      onRejected: (_, error) => rejected.push(error),
    });
  });

  /** The models the removals of `batch` were published under. */
  function removalModels(batch: KvEventBatch): string[] {
    published = [];
    sink.apply(SOURCE, batch);
    return published.flatMap((p) => p.events.map(() => p.model));
  }

  /** `count` BlockStored events of one block each, for adapters `${prefix}0`, `${prefix}1`, ... */
  function adapters(count: number, prefix = "adapter-"): BlockStoredEvent[] {
    return Array.from({ length: count }, (_, i) => stored(1, 1, { loraName: `${prefix}${i}` }));
  }

  function hints(length = 4, model = SOURCE.model): ReplicaHint[] {
    return index.lookup({
      tenant: SOURCE.tenant,
      model,
      hashScheme: SOURCE.hashScheme,
      prefixHashes: chainOf(1, length),
      candidateReplicaIds: [],
      maxHints: 8,
    }).hints as ReplicaHint[];
  }

  it("indexes a stored chain from the root with tokens = position x block size", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4)]));
    expect(hints()).toMatchObject([
      { replicaId: "pod-7", matchedBlocks: 4, matchedTokens: 64, tier: "gpu" },
    ]);
    expect(hints(2)[0]?.matchedTokens).toBe(32);
  });

  it("continues the count from a known parent, and uses the source's block size when the event has none", () => {
    sink.apply(SOURCE, batchOf([stored(1, 2), stored(3, 2, { blockSize: 0 })]));
    expect(hints()[0]).toMatchObject({ matchedBlocks: 4, matchedTokens: 64 });
  });

  it("still indexes blocks whose parent it never saw", () => {
    sink.apply(SOURCE, batchOf([stored(3, 2)]));
    const answer = index.lookup({
      tenant: SOURCE.tenant,
      model: SOURCE.model,
      hashScheme: SOURCE.hashScheme,
      prefixHashes: chainOf(3, 2),
      candidateReplicaIds: [],
      maxHints: 0,
    });
    expect(answer.hints[0]).toMatchObject({ matchedBlocks: 2, matchedTokens: 0 });
  });

  it("removes blocks and clears the replica", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4), removed(3, 2)]));
    expect(hints()[0]?.matchedBlocks).toBe(2);
    sink.apply(SOURCE, batchOf([{ type: "AllBlocksCleared", medium: undefined }]));
    expect(hints()).toEqual([]);
  });

  it("keeps a block offloaded to cpu after the gpu drops it, at the cpu's weight", () => {
    const offload = stored(1, 4, { medium: "CPU", tokenCount: 0 });
    sink.apply(SOURCE, batchOf([stored(1, 4), offload, removed(1, 4, "GPU")]));
    const hint = hints()[0];
    expect(hint).toMatchObject({ matchedBlocks: 4, matchedTokens: 64, tier: "cpu" });
    expect(hint?.score).toBeCloseTo(64 * 0.8);
    sink.apply(SOURCE, batchOf([removed(1, 4, "CPU")]));
    expect(hints()).toEqual([]);
  });

  it("leaves the token counts of offloaded blocks as stored, ranking the longer match first", () => {
    // vLLM announces an offload of a sequence's later blocks with no parent and no token ids.
    const offload = stored(5, 2, { medium: "CPU", tokenCount: 0, parentBlockHash: undefined });
    sink.apply(SOURCE, batchOf([stored(1, 6)]));
    sink.apply({ ...SOURCE, name: "pod-8", replicaId: "pod-8" }, batchOf([stored(1, 4)]));
    sink.apply(SOURCE, batchOf([offload]));
    expect(hints(6).map((h) => [h.replicaId, h.matchedBlocks, h.matchedTokens])).toEqual([
      ["pod-7", 6, 96],
      ["pod-8", 4, 64],
    ]);
  });

  it("adds an offload copy only for blocks it knows", () => {
    sink.apply(SOURCE, batchOf([stored(1, 2, { medium: "CPU", tokenCount: 0 })]));
    expect(hints()).toEqual([]);
  });

  it("makes the data-parallel rank part of the replica id", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4)], 0));
    sink.apply(SOURCE, batchOf([stored(1, 2)], 1));
    expect(hints().map((h) => `${h.replicaId}:${h.matchedBlocks}`)).toEqual([
      "pod-7/dp0:4",
      "pod-7/dp1:2",
    ]);
    sink.apply(
      { ...SOURCE, name: "other", replicaIdTemplate: "{replica}-r{rank}" },
      batchOf([stored(1, 1)], 3),
    );
    expect(hints(1).map((h) => h.replicaId)).toContain("pod-7-r3");
  });

  it("scopes a LoRA adapter's blocks to the adapter: base-model lookups never match them", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "sql-adapter" })]));
    expect(hints()).toEqual([]);
    expect(hints(4, "sql-adapter")[0]?.matchedBlocks).toBe(4);
    sink.apply(SOURCE, batchOf([removed(4, 1)]));
    expect(hints(4, "sql-adapter")[0]?.matchedBlocks).toBe(3);
    sink.apply(SOURCE, batchOf([{ type: "AllBlocksCleared", medium: undefined }]));
    expect(hints(4, "sql-adapter")).toEqual([]);
  });

  it("clears one rank; a gap in batches without a rank clears their replica alone", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4)], 0));
    sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "sql-adapter" })], 1));
    sink.apply(SOURCE, batchOf([stored(1, 4)]));
    sink.clear(SOURCE, 0, "restart");
    expect(hints().map((hint) => hint.replicaId)).toEqual(["pod-7"]);
    expect(hints(4, "sql-adapter")).toHaveLength(1);
    sink.clear(SOURCE, undefined, "gap");
    expect(hints()).toEqual([]);
    expect(hints(4, "sql-adapter").map((hint) => hint.replicaId)).toEqual(["pod-7/dp1"]);
  });

  it("clears every rank the source published when the source is removed", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4)], 0));
    sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "sql-adapter" })], 1));
    sink.clear(SOURCE, undefined, "removed");
    expect(hints()).toEqual([]);
    expect(hints(4, "sql-adapter")).toEqual([]);
  });

  it("keeps a live source's entries past the ttl, under every model it stored for", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4), stored(1, 4, { loraName: "sql-adapter" })]));
    sink.keepAlive(SOURCE, [undefined], clock.now() + 2 * TTL);
    clock.advance(TTL + 1);
    expect(hints()).toHaveLength(1);
    expect(hints(4, "sql-adapter")).toHaveLength(1);
    clock.advance(TTL);
    expect(hints()).toEqual([]);
  });

  it("keeps alive only the ranks it is told of", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4)], 0));
    sink.apply(SOURCE, batchOf([stored(1, 4)], 1));
    sink.keepAlive(SOURCE, [1], clock.now() + 2 * TTL);
    clock.advance(TTL + 1);
    expect(hints().map((hint) => hint.replicaId)).toEqual(["pod-7/dp1"]);
  });

  it("ends the keep-alive of a source that leaves the configuration", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4)]));
    sink.keepAlive(SOURCE, [undefined], clock.now() + 10 * TTL);
    sink.clear(SOURCE, undefined, "removed");
    index.report({
      tenant: SOURCE.tenant,
      model: SOURCE.model,
      replicaId: "pod-7",
      hashScheme: SOURCE.hashScheme,
      prefixes: chainOf(1, 4).map((prefixHash, i) => ({ prefixHash, tokenCount: (i + 1) * 16 })),
    });
    clock.advance(TTL + 1);
    expect(hints()).toEqual([]);
  });

  it("reports a batch the index rejects and applies the rest of the events", () => {
    const tooLong = "x".repeat(300);
    sink.apply(SOURCE, batchOf([stored(1, 2, { loraName: tooLong }), stored(1, 4)]));
    expect(rejected.map((e) => e.field)).toEqual(["lora_name"]);
    expect(hints()[0]?.matchedBlocks).toBe(4);
  });

  it("keeps an adapter name the index refuses out of the replica's later removals and clears", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "" }), stored(1, 4)]));
    expect(rejected.map((e) => e.message)).toEqual(["lora_name is required"]);
    for (let i = 0; i < 5; i++) sink.apply(SOURCE, batchOf([removed(4, 1)]));
    sink.clear(SOURCE, undefined, "gap");
    expect(rejected).toHaveLength(1);
    expect(hints()).toEqual([]);
  });

  it("drops and reports the blocks of an adapter past the replica's cap, keeping the known ones", () => {
    sink.apply(SOURCE, batchOf(adapters(MAX_LORA_ADAPTERS_PER_REPLICA + 1)));
    expect(rejected.map((e) => [e.field, e.message])).toEqual([
      [
        "lora_name",
        `lora_name "adapter-${MAX_LORA_ADAPTERS_PER_REPLICA}" would be adapter ${MAX_LORA_ADAPTERS_PER_REPLICA + 1} of replica pod-7; at most ${MAX_LORA_ADAPTERS_PER_REPLICA} are indexed until it clears its cache`,
      ],
    ]);
    expect(hints(1, `adapter-${MAX_LORA_ADAPTERS_PER_REPLICA}`)).toEqual([]);
    sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "adapter-0" }), stored(1, 4)]));
    expect(hints(4, "adapter-0")[0]?.matchedBlocks).toBe(4);
    expect(hints()[0]?.matchedBlocks).toBe(4);
    expect(rejected).toHaveLength(1);
  });

  it("applies a removal under at most the base model and the capped adapters, however many an engine names", () => {
    sink.apply(SOURCE, batchOf(adapters(10 * MAX_LORA_ADAPTERS_PER_REPLICA)));
    expect(rejected).toHaveLength(9 * MAX_LORA_ADAPTERS_PER_REPLICA);
    const models = removalModels(batchOf([removed(1, 1), removed(2, 1)]));
    expect(models).toHaveLength(2 * (1 + MAX_LORA_ADAPTERS_PER_REPLICA));
    expect(new Set(models).size).toBe(1 + MAX_LORA_ADAPTERS_PER_REPLICA);
  });

  it("forgets the replica's adapters once the engine clears every block, making room for new ones", () => {
    sink.apply(SOURCE, batchOf(adapters(MAX_LORA_ADAPTERS_PER_REPLICA)));
    const cleared = removalModels(batchOf([{ type: "AllBlocksCleared", medium: undefined }]));
    expect(cleared).toHaveLength(1 + MAX_LORA_ADAPTERS_PER_REPLICA);
    expect(removalModels(batchOf([removed(1, 1)]))).toEqual([SOURCE.model]);
    sink.apply(SOURCE, batchOf(adapters(MAX_LORA_ADAPTERS_PER_REPLICA, "other-")));
    expect(rejected).toEqual([]);
    expect(hints(1, `other-${MAX_LORA_ADAPTERS_PER_REPLICA - 1}`)).toHaveLength(1);
  });

  it("still removes an adapter's blocks after the engine clears another medium only", () => {
    sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "sql-adapter" })]));
    sink.apply(SOURCE, batchOf([{ type: "AllBlocksCleared", medium: "CPU" }, removed(4, 1)]));
    expect(hints(4, "sql-adapter")[0]?.matchedBlocks).toBe(3);
  });

  it.each(["restart", "gap"] as const)(
    "forgets the replica's adapters once a %s has cleared them",
    (reason) => {
      sink.apply(SOURCE, batchOf([stored(1, 4, { loraName: "sql-adapter" })]));
      published = [];
      sink.clear(SOURCE, undefined, reason);
      expect(published.map((p) => [p.model, p.events])).toEqual([
        [SOURCE.model, [{ type: "all-cleared" }]],
        ["sql-adapter", [{ type: "all-cleared" }]],
      ]);
      expect(removalModels(batchOf([removed(1, 1)]))).toEqual([SOURCE.model]);
    },
  );

  it.each([
    ["GPU", "gpu"],
    ["cpu", "cpu"],
    ["DISK", "disk"],
    ["LMCACHE", "other"],
  ] as const)("reads medium %s as the %s tier", (medium, tier) => {
    expect(tierOfMedium(medium)).toBe(tier);
  });
});
