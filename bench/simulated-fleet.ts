import type { CacheEvent, PrefixEntry, PrefixHash, ReplicaStats } from "../src/core/types.js";
import { blockHash, MOONCAKE_BLOCK_TOKENS, type TraceRequest } from "./mooncake-trace.js";

/**
 * A simulated fleet of inference replicas, shared by the replay benchmark and the routing
 * simulator: each replica has a KV cache of a fixed number of blocks with LRU eviction, and serving
 * a request stores its blocks the way a prefix-caching engine (vLLM, SGLang) does.
 */

/** A block of the trace (a Mooncake `hash_id`): the identity of one prefix block. */
export type BlockId = number;

/** A block a cache holds, with its position in the chain that stored it. */
export interface HeldBlock {
  readonly block: BlockId;
  /** 0 for the head of the chain; the block covers tokens up to (depth + 1) x block size. */
  readonly depth: number;
}

/** What serving one request did to a replica's cache. */
export interface CacheChange {
  /** Leading blocks of the chain the cache held when the request arrived: what the engine reuses. */
  readonly reusedBlocks: number;
  /** Blocks the cache did not hold and now does (head first): the engine's store events. */
  readonly stored: readonly HeldBlock[];
  /** Blocks pushed out to make room, least recently used first: the engine's remove events. */
  readonly evicted: readonly HeldBlock[];
}

/**
 * One replica's KV cache: at most `capacityBlocks` blocks, the least recently used evicted first.
 *
 * Serving a chain touches its blocks tail first, so the head ends most recently used and a chain
 * loses its tail before its head, as vLLM frees a sequence's blocks in reverse. A chain longer than
 * the capacity is stored up to the capacity (its head); the rest is computed and dropped.
 */
export class ReplicaCache {
  readonly capacityBlocks: number;
  /** Held block -> its depth, least recently used first (a touch deletes and re-inserts). */
  readonly #blocks = new Map<BlockId, number>();

  constructor(capacityBlocks: number) {
    if (!Number.isInteger(capacityBlocks) || capacityBlocks < 1) {
      throw new RangeError(`capacityBlocks must be a positive integer, got ${capacityBlocks}`);
    }
    this.capacityBlocks = capacityBlocks;
  }

  /** Blocks held now. */
  get size(): number {
    return this.#blocks.size;
  }

  holds(block: BlockId): boolean {
    return this.#blocks.has(block);
  }

  /** Leading blocks of `chain` held, counted from the head up to the first block not held. */
  reusablePrefix(chain: readonly BlockId[]): number {
    let depth = 0;
    while (depth < chain.length && this.#blocks.has(chain[depth] as BlockId)) depth++;
    return depth;
  }

  /** Serves a request whose prompt is `chain` (head first): stores, refreshes, evicts. */
  serve(chain: readonly BlockId[]): CacheChange {
    const reusedBlocks = this.reusablePrefix(chain);
    const kept = Math.min(chain.length, this.capacityBlocks);
    const stored: HeldBlock[] = [];
    for (let depth = kept - 1; depth >= 0; depth--) {
      const block = chain[depth] as BlockId;
      const held = this.#blocks.delete(block);
      this.#blocks.set(block, depth);
      if (!held) stored.push({ block, depth });
    }
    stored.reverse();
    // The chain's blocks are the most recently used, so the oldest are never this request's own.
    const evicted: HeldBlock[] = [];
    for (const [block, depth] of this.#blocks) {
      if (this.#blocks.size - evicted.length <= this.capacityBlocks) break;
      evicted.push({ block, depth });
    }
    for (const { block } of evicted) this.#blocks.delete(block);
    return { reusedBlocks, stored, evicted };
  }
}

/**
 * How long a request keeps its replica busy, from nominal engine rates: prefill of the prompt's
 * tokens not already cached, then decode of the output one sequence at a time. Batching is not
 * modelled: a replica serves any number of requests at once, each at these rates, so "load" is the
 * number of requests in flight.
 */
export interface ServiceModel {
  /** Prompt tokens prefilled per second for one request. @default 5_000 */
  readonly prefillTokensPerSecond: number;
  /** Output tokens decoded per second for one request. @default 30 */
  readonly decodeTokensPerSecond: number;
}

/**
 * Rates of an 8B-class model on one modern GPU under batching: ~5k prompt tokens/s of prefill and
 * ~30 output tokens/s per sequence. With the Mooncake conversation trace (3.4 requests/s, 12k
 * prompt tokens and 343 output tokens on average) a request stays ~13 s, so ~45 are in flight
 * across the fleet: a few per replica on 8 replicas, fewer than one on 128.
 */
export const NOMINAL_SERVICE_MODEL: ServiceModel = Object.freeze({
  prefillTokensPerSecond: 5_000,
  decodeTokensPerSecond: 30,
});

/** How long `request` stays in flight (ms) when its first `reusedBlocks` blocks were cached. */
export function serviceTimeMs(
  request: TraceRequest,
  reusedBlocks: number,
  model: ServiceModel,
): number {
  const uncached = Math.max(0, request.inputLength - reusedBlocks * MOONCAKE_BLOCK_TOKENS);
  return (
    (1000 * uncached) / model.prefillTokensPerSecond +
    (1000 * request.outputLength) / model.decodeTokensPerSecond
  );
}

/** Options of {@link SimulatedFleet}. */
export interface SimulatedFleetOptions {
  readonly replicas: number;
  /** Each replica's KV capacity, in trace blocks (512 tokens). */
  readonly capacityBlocks: number;
  /** @default NOMINAL_SERVICE_MODEL */
  readonly serviceModel?: ServiceModel;
}

/**
 * Replicas with caches and load, driven by a caller-owned clock in trace time (ms). Call
 * {@link SimulatedFleet.advanceTo} with each arrival's timestamp before routing it, so that
 * requests that finished meanwhile no longer count as load.
 */
export class SimulatedFleet {
  readonly replicaCount: number;
  readonly #caches: ReplicaCache[];
  readonly #serviceModel: ServiceModel;
  /** Per replica, the finish times of its requests in flight (unordered). */
  readonly #inFlight: number[][];
  readonly #served: number[];
  #active = 0;
  /** Replicas whose load the last advanceTo() changed; reused between calls. */
  readonly #changed: number[] = [];

  constructor(options: SimulatedFleetOptions) {
    if (!Number.isInteger(options.replicas) || options.replicas < 1) {
      throw new RangeError(`replicas must be a positive integer, got ${options.replicas}`);
    }
    this.replicaCount = options.replicas;
    this.#caches = Array.from(
      { length: options.replicas },
      () => new ReplicaCache(options.capacityBlocks),
    );
    this.#serviceModel = options.serviceModel ?? NOMINAL_SERVICE_MODEL;
    this.#inFlight = Array.from({ length: options.replicas }, () => []);
    this.#served = new Array<number>(options.replicas).fill(0);
  }

  /**
   * Retires the requests finished by `nowMs`. Returns the replicas whose load changed, valid until
   * the next call.
   */
  advanceTo(nowMs: number): readonly number[] {
    this.#changed.length = 0;
    for (let replica = 0; replica < this.replicaCount; replica++) {
      const finishes = this.#inFlight[replica] as number[];
      let kept = 0;
      for (const finish of finishes) if (finish > nowMs) finishes[kept++] = finish;
      if (kept === finishes.length) continue;
      this.#active -= finishes.length - kept;
      finishes.length = kept;
      this.#changed.push(replica);
    }
    return this.#changed;
  }

  /** Routes `request` to `replica` at `nowMs`: its cache serves the chain, its load grows by one. */
  serve(replica: number, request: TraceRequest, nowMs: number): CacheChange {
    const change = this.cache(replica).serve(request.hashIds);
    const finishes = this.#inFlight[replica] as number[];
    finishes.push(nowMs + serviceTimeMs(request, change.reusedBlocks, this.#serviceModel));
    this.#active++;
    this.#served[replica] = (this.#served[replica] as number) + 1;
    return change;
  }

  cache(replica: number): ReplicaCache {
    const cache = this.#caches[replica];
    if (cache === undefined) throw new RangeError(`no replica ${replica}`);
    return cache;
  }

  /** Requests in flight on `replica`. */
  activeRequests(replica: number): number {
    return this.#inFlight[replica]?.length ?? 0;
  }

  /** Requests in flight per replica, averaged over the fleet. */
  meanActiveRequests(): number {
    return this.#active / this.replicaCount;
  }

  /** Requests routed to `replica` so far. */
  servedRequests(replica: number): number {
    return this.#served[replica] ?? 0;
  }

  /** What an engine would report as its load: requests in flight and KV usage. */
  stats(replica: number): ReplicaStats {
    const cache = this.cache(replica);
    return {
      activeRequests: this.activeRequests(replica),
      queuedRequests: 0,
      kvCacheUsage: cache.size / cache.capacityBlocks,
    };
  }
}

/**
 * A memoised {@link blockHash}: one `Uint8Array` per block id, so that every chain naming a block
 * shares its bytes and nothing is hashed while a benchmark's clock runs.
 */
export function memoizedBlockHash(): (block: BlockId) => PrefixHash {
  const hashes = new Map<BlockId, PrefixHash>();
  return (block) => {
    let hash = hashes.get(block);
    if (hash === undefined) {
      hash = blockHash(block);
      hashes.set(block, hash);
    }
    return hash;
  };
}

/** Options of {@link engineEvents}. */
export interface EngineEventOptions {
  /** Load to attach to the last event. */
  readonly stats?: ReplicaStats;
}

/**
 * The events an engine publishes after serving a request, as vLLM's KV events carry them: the
 * evictions (`prefix-evicted`), then the blocks it stored (`prefix-added`, head first, token counts
 * from their depth). Blocks it already held publish nothing. Empty parts are left out; when both are
 * empty and stats are given, a `replica-updated` carries them.
 */
export function engineEvents(
  change: CacheChange,
  hashOf: (block: BlockId) => PrefixHash,
  options: EngineEventOptions = {},
): CacheEvent[] {
  const entry = ({ block, depth }: HeldBlock): PrefixEntry => ({
    prefixHash: hashOf(block),
    tokenCount: (depth + 1) * MOONCAKE_BLOCK_TOKENS,
  });
  const { stats } = options;
  const evicted = change.evicted.map(entry);
  const added = change.stored.map(entry);
  const events: CacheEvent[] = [];
  // Stats ride on the last event, as an engine reports its load after the step that changed it.
  if (evicted.length > 0) {
    events.push({
      type: "prefix-evicted",
      prefixes: evicted,
      stats: added.length === 0 ? stats : undefined,
    });
  }
  if (added.length > 0) events.push({ type: "prefix-added", prefixes: added, stats });
  if (events.length === 0 && stats !== undefined) events.push({ type: "replica-updated", stats });
  return events;
}
