import { createCacheIndex } from "../src/core/create-cache-index.js";
import type { EventBatch } from "../src/core/types.js";
import { median, rangeOf } from "./stats.js";

/** What the block-write benchmark measured (medians over rounds). */
export interface WriteResult {
  readonly replicas: number;
  readonly blocksPerEvent: number;
  /** Holder-blocks the index holds in steady state. */
  readonly steadyHolderBlocks: number;
  readonly rounds: number;
  /** Blocks added plus blocks removed, per second, on one core. */
  readonly blockWritesPerSecond: number;
  /** The slowest and the fastest round's figure: how much the machine moved during the run. */
  readonly blockWritesRange: readonly [number, number];
}

export interface WriteOptions {
  readonly replicas: number;
  /** Chains each replica keeps; each step adds one and evicts its oldest. */
  readonly chainsPerReplica: number;
  readonly blocksPerEvent: number;
  /** Steps timed per round: each replica adds one chain and evicts one. */
  readonly steps: number;
  readonly rounds: number;
}

const SCOPE = { tenant: "bench", model: "m", hashScheme: "s" };

/**
 * Engine churn as event streams produce it: every replica in turn publishes one batch that stores a
 * new chain of `blocksPerEvent` blocks and evicts the chain it stored `chainsPerReplica` steps
 * earlier, so the index stays at replicas x chainsPerReplica x blocksPerEvent holder-blocks. Every
 * batch is built before timing starts.
 */
export function runWriteBenchmark(options: WriteOptions): WriteResult {
  const { replicas, chainsPerReplica, blocksPerEvent, steps, rounds } = options;
  const slots = chainsPerReplica + 1;
  // batches[slot][replica] stores chain `slot` and evicts chain `slot + 1` (mod slots), the one
  // stored chainsPerReplica steps earlier.
  // Hashes are views of one buffer, in the order they are written, as a decoded message's would be.
  const bytes = new Uint8Array(slots * replicas * blocksPerEvent * 8);
  const view = new DataView(bytes.buffer);
  const chains = Array.from({ length: slots }, (_, slot) =>
    Array.from({ length: replicas }, (_, replica) =>
      Array.from({ length: blocksPerEvent }, (_, i) => {
        const n = (slot * replicas + replica) * blocksPerEvent + i;
        view.setUint32(n * 8, Math.floor(n / 2 ** 20));
        view.setUint32(n * 8 + 4, Math.imul(n, 0x9e3779b1) >>> 0);
        return { prefixHash: bytes.subarray(n * 8, n * 8 + 8), tokenCount: (i + 1) * 16 };
      }),
    ),
  );
  const batches: EventBatch[][] = chains.map((bySlot, slot) =>
    bySlot.map((prefixes, replica) => ({
      ...SCOPE,
      replicaId: `replica-${replica}`,
      events: [
        { type: "prefix-added", prefixes },
        {
          type: "prefix-evicted",
          prefixes: (chains[(slot + 1) % slots] as (typeof chains)[number])[replica] ?? [],
        },
      ],
    })),
  );
  const rates: number[] = [];
  let steady = 0;
  for (let round = 0; round <= rounds; round++) {
    const index = createCacheIndex({
      clock: { now: () => performance.now() },
      maxEntries: replicas * slots * blocksPerEvent * 2,
    });
    // Fill to steady state, untimed.
    for (let step = 0; step < chainsPerReplica; step++) {
      for (const batch of batches[step] as EventBatch[]) index.publish(batch);
    }
    let written = 0;
    const start = performance.now();
    for (let step = chainsPerReplica; step < chainsPerReplica + steps; step++) {
      for (const batch of batches[step % slots] as EventBatch[]) {
        const outcome = index.publish(batch);
        written += outcome.addedPrefixes + outcome.evicted.event;
      }
    }
    const seconds = (performance.now() - start) / 1000;
    steady = index.size().entries;
    // Round 0 warms the JIT up and is not counted.
    if (round > 0) rates.push(written / seconds);
  }
  return {
    replicas,
    blocksPerEvent,
    steadyHolderBlocks: steady,
    rounds,
    blockWritesPerSecond: median(rates),
    blockWritesRange: rangeOf(rates),
  };
}
