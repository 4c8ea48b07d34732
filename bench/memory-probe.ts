/**
 * Measures the index's memory for one workload, in a process of its own started with `--expose-gc`
 * (see memory-bench.ts): baseline with an empty index, after filling it to the target holder-blocks,
 * after clearing every replica, and after filling it again. Prints one JSON line.
 */
import { fileURLToPath } from "node:url";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import type { PrefixEntry } from "../src/core/types.js";
import { loadTrace, MOONCAKE_BLOCK_TOKENS } from "./mooncake-trace.js";

/** One fill of the index: reports, in order, of (replica, block ids). */
export type MemoryWorkload = "mooncake" | "distinct" | "shared";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

const workload = process.argv[2] as MemoryWorkload;
const target = Number(process.argv[3] ?? 10_000_000);
const SCOPE = { tenant: "bench", model: "m", hashScheme: "s" };
const clock = { now: () => performance.now() };

// Loaded before the baseline is taken, so that it is not counted as the index's.
const trace =
  workload === "mooncake"
    ? loadTrace(
        fileURLToPath(new URL("../../bench/data/mooncake-conversation.jsonl", import.meta.url)),
      )
    : [];

/**
 * Calls `store(replica, ids)` until the index holds `target` holder-blocks, or, given `stores`, that
 * many times (to repeat a fill). Returns how many times it called `store`.
 */
function fill(store: (replica: number, ids: readonly number[]) => void, stores?: number): number {
  let calls = 0;
  const storeOnce = (replica: number, ids: readonly number[]) => {
    store(replica, ids);
    calls++;
  };
  if (workload === "distinct") {
    // Worst case: every block held by one replica. 1,000 replicas, chains of 100 unique blocks.
    for (let chain = 0; chain * 100 < target; chain++) {
      storeOnce(
        chain % 1000,
        Array.from({ length: 100 }, (_, i) => chain * 100 + i),
      );
    }
  } else if (workload === "shared") {
    // Every block held by 10 of 1,000 replicas: chains of 100 blocks, each stored on 10 replicas.
    for (let chain = 0; chain * 1000 < target; chain++) {
      const ids = Array.from({ length: 100 }, (_, i) => chain * 100 + i);
      for (let copy = 0; copy < 10; copy++) storeOnce((chain * 10 + copy) % 1000, ids);
    }
  } else {
    // The Mooncake trace over 7,000 workers, each request's chain stored on a random worker, the
    // trace repeated with its block ids offset per copy (Dynamo's trace duplication) until full.
    // A chain may share blocks with one its worker already holds, so the index is asked how full it
    // is. Stopping there leaves the index at the target or a chain's new blocks past it.
    let seed = 1;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const done = () => (stores === undefined ? index.size().entries >= target : calls >= stores);
    for (let copy = 0; !done(); copy++) {
      for (const request of trace) {
        if (done()) break;
        const ids = request.hashIds.map((id) => id + copy * 10_000_000);
        storeOnce(Math.floor(random() * 7000), ids);
      }
    }
  }
  return calls;
}

let arrayBytes = 0;
function measure(): number {
  // A sweep finishes any table resize in progress, as the sidecar's sweeper and further writes do.
  index.sweep(Number.MAX_SAFE_INTEGER);
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  arrayBytes = usage.arrayBuffers;
  return usage.heapUsed + usage.arrayBuffers;
}

// Room for the last chain past the target, so that filling evicts nothing.
const index = createCacheIndex({ clock, maxEntries: target + 10_000, ttlMs: 3_600_000 });
const replicas = new Set<number>();
const store = (replica: number, ids: readonly number[]) => {
  replicas.add(replica);
  const bytes = new Uint8Array(ids.length * 8);
  const view = new DataView(bytes.buffer);
  const prefixes: PrefixEntry[] = ids.map((id, i) => {
    // blockHash(id), without a BigInt per block: ids stay below 2^53.
    view.setUint32(i * 8, Math.floor(id / 2 ** 32));
    view.setUint32(i * 8 + 4, id >>> 0);
    return {
      prefixHash: bytes.subarray(i * 8, i * 8 + 8),
      tokenCount: (i + 1) * MOONCAKE_BLOCK_TOKENS,
    };
  });
  index.report({ ...SCOPE, replicaId: `replica-${replica}`, prefixes });
};
const clearAll = () => {
  for (const replica of replicas) {
    index.publish({
      ...SCOPE,
      replicaId: `replica-${replica}`,
      events: [{ type: "all-cleared" }],
    });
  }
};

const baseline = measure();
const baselineArrays = arrayBytes;
const started = performance.now();
const stores = fill(store);
const fillSeconds = (performance.now() - started) / 1000;
const holderBlocks = index.size().entries;
const filled = measure();
const arrayBytesPerHolderBlock = (arrayBytes - baselineArrays) / holderBlocks;
clearAll();
const cleared = measure();
fill(store, stores);
const refilled = measure();
// Counted last, outside every measurement: the same fill, into a set instead of the index.
const distinctBlocks = new Set<number>();
const counted = distinctBlocks;
fill((_, ids) => {
  for (const id of ids) counted.add(id);
}, stores);

console.log(
  JSON.stringify({
    workload,
    holderBlocks,
    blocks: distinctBlocks.size,
    replicas: replicas.size,
    fillSeconds,
    bytesPerHolderBlock: (filled - baseline) / holderBlocks,
    arrayBytesPerHolderBlock,
    retainedAfterClearBytes: cleared - baseline,
    refillBytesPerHolderBlock: (refilled - baseline) / holderBlocks,
  }),
);
