import type { CacheIndex } from "../src/core/cache-index.js";
import type { EventBatch, RouteQuery } from "../src/core/types.js";
import type { TraceRequest } from "./mooncake-trace.js";
import { createSeededRandom } from "./seeded-random.js";
import { type BlockId, engineEvents, memoizedBlockHash, ReplicaCache } from "./simulated-fleet.js";
import { fmt, median, quantile } from "./stats.js";

/**
 * The Mooncake replay benchmark, after NVIDIA Dynamo's indexer benchmark (`lib/bench/kv_router`,
 * `mooncake_bench`): every request of the trace is a lookup of its chain, followed by the store
 * and remove events of the worker that served it.
 *
 * As in Dynamo:
 * - **Worker choice** does not depend on the lookup: each request goes to a worker drawn by a
 *   seeded PRNG (Dynamo partitions the trace's sessions over workers at random, seed 42; in the
 *   conversation trace every request is its own session). The whole schedule is therefore built
 *   before the clock starts, and every engine sees exactly the same operations.
 * - **Events** come from a simulated engine per worker: an LRU cache of `capacityBlocks` blocks
 *   (Dynamo runs its mock vLLM scheduler with prefix caching). Serving a request stores the blocks
 *   the worker did not hold (one `prefix-added` event) and evicts the least recently used blocks
 *   past the capacity (one `prefix-evicted` event); blocks already held are reused silently, as
 *   engines only publish new blocks. The two events go in one `publish` batch per request.
 * - **Trace duplication**: the trace is replayed `traceCopies` times with every hash id offset
 *   per copy (Dynamo's `--trace-duplication-factor`): structurally identical prefix trees with
 *   disjoint hashes, interleaved in timestamp order, so 7,000 workers each see several requests.
 * - **Ops** are counted both ways Dynamo's benchmark reports them: logical operations (lookups +
 *   store events + remove events, each event one operation however many blocks it names) and block
 *   operations (blocks looked up + blocks stored + blocks removed). The targets' ops/s are judged
 *   in block ops/s, and both are reported.
 *
 * Unlike Dynamo, the replay is one thread issuing operations back to back (no deadlines, no
 * concurrency): the figures are the engine's cost per operation, not a keep-up rate.
 */

/** The scope every replayed write and lookup uses. */
export const REPLAY_SCOPE = Object.freeze({
  tenant: "bench",
  model: "mooncake",
  hashScheme: "mooncake-bs512",
});

/** Default workers: the fleet size of Dynamo's published 7,000-worker figure. */
export const DEFAULT_REPLAY_WORKERS = 7_000;
/**
 * Default KV capacity per worker, in 512-token blocks (32k tokens). A request averages 24 blocks,
 * so with the default copies and workers a worker serves ~7 requests (~165 blocks): caches fill
 * after two or three requests, and 59% of requests then evict (28k remove events, 546k blocks
 * removed, against 48k store events). A real GPU holds more, but a real worker also serves far
 * more than 7 requests an hour; what matters here is that removals flow as they do in production.
 */
export const DEFAULT_REPLAY_CAPACITY_BLOCKS = 64;
/** Default trace copies: 4 x 12,031 = 48,124 requests. */
export const DEFAULT_REPLAY_TRACE_COPIES = 4;
/** Default PRNG seed, Dynamo's. */
export const DEFAULT_REPLAY_SEED = 42;

/**
 * The trace `copies` times, every block id of copy c offset by c x (largest id + 1), requests
 * interleaved copy by copy so the result stays in timestamp order.
 */
export function duplicateTrace(trace: readonly TraceRequest[], copies: number): TraceRequest[] {
  if (copies === 1) return [...trace];
  let largest = 0;
  for (const request of trace) for (const id of request.hashIds) largest = Math.max(largest, id);
  const stride = largest + 1;
  const copied: TraceRequest[] = [];
  for (const request of trace) {
    for (let copy = 0; copy < copies; copy++) {
      const offset = copy * stride;
      copied.push({ ...request, hashIds: request.hashIds.map((id) => id + offset) });
    }
  }
  return copied;
}

/** What a replay does, counted once when its schedule is built. */
export interface ReplayTotals {
  readonly lookups: number;
  readonly lookupBlocks: number;
  readonly storedEvents: number;
  readonly storedBlocks: number;
  readonly removedEvents: number;
  readonly removedBlocks: number;
  /** Requests whose worker had to evict. */
  readonly evictingRequests: number;
  /** Event batches (one `publish` per request with events; none when the chain was all held). */
  readonly batches: number;
}

/** Every operation of a replay, built before timing: the timed loop only calls the index. */
export interface ReplaySchedule {
  readonly workers: number;
  /** Worker ids: `worker-0` ... */
  readonly workerIds: readonly string[];
  /** Per request, in replay order: its lookup. */
  readonly lookups: readonly RouteQuery[];
  /** Per request: the events its worker publishes after serving it; undefined when none. */
  readonly publications: readonly (EventBatch | undefined)[];
  /** Per request: the worker that served it. */
  readonly workerOf: Int32Array;
  readonly totals: ReplayTotals;
}

/** Options of {@link buildReplaySchedule}. */
export interface ReplayScheduleOptions {
  readonly trace: readonly TraceRequest[];
  /** @default DEFAULT_REPLAY_WORKERS */
  readonly workers?: number;
  /** @default DEFAULT_REPLAY_CAPACITY_BLOCKS */
  readonly capacityBlocks?: number;
  /** @default DEFAULT_REPLAY_TRACE_COPIES */
  readonly traceCopies?: number;
  /** @default DEFAULT_REPLAY_SEED */
  readonly seed?: number;
  /** Replays only the head of the duplicated trace, this fraction of it (0, 1]. @default 1 */
  readonly fraction?: number;
}

/**
 * Duplicates the trace, draws each request's worker, runs every worker's cache and turns the
 * result into prebuilt lookups and event batches. Deterministic for given options.
 */
export function buildReplaySchedule(options: ReplayScheduleOptions): ReplaySchedule {
  const workers = options.workers ?? DEFAULT_REPLAY_WORKERS;
  const capacityBlocks = options.capacityBlocks ?? DEFAULT_REPLAY_CAPACITY_BLOCKS;
  const copied = duplicateTrace(options.trace, options.traceCopies ?? DEFAULT_REPLAY_TRACE_COPIES);
  const requests = copied.slice(0, Math.ceil(copied.length * (options.fraction ?? 1)));
  const random = createSeededRandom(options.seed ?? DEFAULT_REPLAY_SEED);
  const hashOf = memoizedBlockHash();
  const workerIds = Array.from({ length: workers }, (_, i) => `worker-${i}`);
  const caches: (ReplicaCache | undefined)[] = new Array(workers);

  const lookups: RouteQuery[] = [];
  const publications: (EventBatch | undefined)[] = [];
  const workerOf = new Int32Array(requests.length);
  const totals = {
    lookups: 0,
    lookupBlocks: 0,
    storedEvents: 0,
    storedBlocks: 0,
    removedEvents: 0,
    removedBlocks: 0,
    evictingRequests: 0,
    batches: 0,
  };
  for (let i = 0; i < requests.length; i++) {
    const chain = (requests[i] as TraceRequest).hashIds;
    const worker = random.nextInt(workers);
    workerOf[i] = worker;
    lookups.push({
      ...REPLAY_SCOPE,
      prefixHashes: chain.map((block: BlockId) => hashOf(block)),
      candidateReplicaIds: [],
      maxHints: 0,
    });
    totals.lookups++;
    totals.lookupBlocks += chain.length;

    let cache = caches[worker];
    if (cache === undefined) {
      cache = new ReplicaCache(capacityBlocks);
      caches[worker] = cache;
    }
    const change = cache.serve(chain);
    const events = engineEvents(change, hashOf);
    if (events.length > 0) totals.batches++;
    publications.push(
      events.length === 0
        ? undefined
        : { ...REPLAY_SCOPE, replicaId: workerIds[worker] as string, events },
    );
    if (change.stored.length > 0) totals.storedEvents++;
    totals.storedBlocks += change.stored.length;
    if (change.evicted.length > 0) {
      totals.removedEvents++;
      totals.evictingRequests++;
    }
    totals.removedBlocks += change.evicted.length;
  }
  return { workers, workerIds, lookups, publications, workerOf, totals };
}

/** The operations a replay counts: lookups plus store and remove events. */
export function replayOps(totals: ReplayTotals): number {
  return totals.lookups + totals.storedEvents + totals.removedEvents;
}

/** Blocks a replay touches: blocks looked up plus blocks stored and removed. */
export function replayBlockOps(totals: ReplayTotals): number {
  return totals.lookupBlocks + totals.storedBlocks + totals.removedBlocks;
}

/** Options of {@link runReplayBenchmark}. */
export interface ReplayOptions extends ReplayScheduleOptions {
  /** A fresh, empty index for each round. Its TTL and cap must not drop entries during a replay. */
  readonly createIndex: () => CacheIndex;
  /** Timed rounds, each on a fresh index; figures are medians over them. @default 5 */
  readonly rounds?: number;
  /** Head of the schedule replayed untimed first on its own index, to warm the JIT. @default 0.1 */
  readonly warmupFraction?: number;
}

/** What the in-process replay measured: medians over rounds. */
export interface ReplayResult {
  readonly workers: number;
  readonly capacityBlocks: number;
  readonly traceCopies: number;
  readonly fraction: number;
  readonly rounds: number;
  readonly totals: ReplayTotals;
  /** (lookups + store events + remove events) / wall time of the replay. */
  readonly opsPerSecond: number;
  /** (blocks looked up + stored + removed) / wall time of the replay. */
  readonly blockOpsPerSecond: number;
  /** Lookups / time spent inside `lookup()` calls. */
  readonly lookupsPerSecond: number;
  /** Events / time spent outside `lookup()` calls (publishing, and the loop itself). */
  readonly eventsPerSecond: number;
  readonly lookupP50Us: number;
  readonly lookupP99Us: number;
  /** Holder entries in the index after the replay. */
  readonly holderEntries: number;
  /** Mean matched blocks of the top hint: how much of a chain the index found held somewhere. */
  readonly meanMatchedBlocks: number;
  /** What one timing (two `performance.now()` reads) costs, to set against the lookup p50. */
  readonly timerOverheadUs: number;
}

/**
 * Replays the schedule `rounds` times against fresh indexes from `createIndex`, calling `lookup()`
 * and `publish()` directly. Each lookup is timed on its own with `performance.now()`.
 */
export function runReplayBenchmark(options: ReplayOptions): ReplayResult {
  const rounds = options.rounds ?? 5;
  const schedule = buildReplaySchedule(options);
  const { lookups, publications, totals } = schedule;
  const requests = lookups.length;
  const events = totals.storedEvents + totals.removedEvents;
  const latencies = new Float64Array(requests);

  const opsRates: number[] = [];
  const blockOpsRates: number[] = [];
  const lookupRates: number[] = [];
  const eventRates: number[] = [];
  const p50s: number[] = [];
  const p99s: number[] = [];
  let holderEntries = 0;
  let matchedBlocks = 0;
  const warmup = Math.ceil(requests * (options.warmupFraction ?? 0.1));
  for (let round = -1; round < rounds; round++) {
    const index = options.createIndex();
    const count = round < 0 ? warmup : requests;
    matchedBlocks = 0;
    let lookupMs = 0;
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const answer = index.lookup(lookups[i] as RouteQuery);
      const elapsed = performance.now() - t0;
      latencies[i] = elapsed;
      lookupMs += elapsed;
      matchedBlocks += answer.hints[0]?.matchedBlocks ?? 0;
      const batch = publications[i];
      if (batch !== undefined) index.publish(batch);
    }
    const totalMs = performance.now() - start;
    if (round < 0) continue;
    holderEntries = index.size().entries;
    opsRates.push((replayOps(totals) * 1000) / totalMs);
    blockOpsRates.push((replayBlockOps(totals) * 1000) / totalMs);
    lookupRates.push((requests * 1000) / lookupMs);
    eventRates.push((events * 1000) / (totalMs - lookupMs));
    const sample = Array.from(latencies);
    p50s.push(quantile(sample, 0.5) * 1000);
    p99s.push(quantile(sample, 0.99) * 1000);
  }
  return {
    workers: schedule.workers,
    capacityBlocks: options.capacityBlocks ?? DEFAULT_REPLAY_CAPACITY_BLOCKS,
    traceCopies: options.traceCopies ?? DEFAULT_REPLAY_TRACE_COPIES,
    fraction: options.fraction ?? 1,
    rounds,
    totals,
    opsPerSecond: median(opsRates),
    blockOpsPerSecond: median(blockOpsRates),
    lookupsPerSecond: median(lookupRates),
    eventsPerSecond: median(eventRates),
    lookupP50Us: median(p50s),
    lookupP99Us: median(p99s),
    holderEntries,
    meanMatchedBlocks: matchedBlocks / requests,
    timerOverheadUs: measureTimerOverheadUs(),
  };
}

/** The mean cost of timing one lookup (two `performance.now()` reads and the bookkeeping), in µs. */
function measureTimerOverheadUs(): number {
  const pairs = 100_000;
  let timed = 0;
  const start = performance.now();
  for (let i = 0; i < pairs; i++) {
    const t0 = performance.now();
    timed += performance.now() - t0;
  }
  const perPairUs = ((performance.now() - start) * 1000) / pairs;
  // `timed` is never negative: reading it keeps the loop's work observable, as in the replay.
  return timed >= 0 ? perPairUs : Number.NaN;
}

/** The replay's figures as a Markdown table, for RESULTS.md. */
export function formatReplayMarkdown(result: ReplayResult): string {
  const { totals } = result;
  return `| Mooncake replay in process (median of ${result.rounds} rounds) | value |
|---|---|
| workers; KV capacity per worker; trace copies | ${fmt(result.workers)}; ${fmt(result.capacityBlocks)} blocks; ${result.traceCopies}${result.fraction < 1 ? ` (first ${fmt(result.fraction * 100)}%)` : ""} |
| ops: lookups + store events + remove events | ${fmt(totals.lookups)} + ${fmt(totals.storedEvents)} + ${fmt(totals.removedEvents)} |
| **ops/s** | **${fmt(result.opsPerSecond)}** |
| block ops/s (blocks named by lookups, stored, removed) | ${fmt(result.blockOpsPerSecond)} |
| lookups/s (time inside \`lookup\`); events/s (the rest) | ${fmt(result.lookupsPerSecond)}; ${fmt(result.eventsPerSecond)} |
| **lookup p50 / p99** | **${fmt(result.lookupP50Us)} µs / ${fmt(result.lookupP99Us)} µs** |
| holder entries at the end | ${fmt(result.holderEntries)} |
| mean matched blocks of the top hint | ${fmt(result.meanMatchedBlocks)} |
| timing overhead per lookup | ${fmt(result.timerOverheadUs)} µs |`;
}
