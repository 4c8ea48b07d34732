import type { CacheIndex } from "../core/cache-index.js";
import { IndexError } from "../core/index-error.js";
import { nameProblem, problemError } from "../core/request-validation.js";
import type { CacheEvent, ModelId, StorageTier } from "../core/types.js";
import type { ClearReason, KvEventSink } from "./kv-event-sink.js";
import { type KvEventSource, replicaIdFor } from "./kv-event-source.js";
import type { KvEvent, KvEventBatch } from "./kv-event-types.js";

/** Options of {@link createIndexKvEventSink}. */
export interface IndexKvEventSinkOptions {
  /** The index the events are applied to. */
  readonly index: Pick<CacheIndex, "publish" | "keepAlive">;
  /**
   * Called when the index rejects a batch as a whole (a LoRA name that is not a valid model name,
   * say), or when blocks of an adapter past {@link MAX_LORA_ADAPTERS_PER_REPLICA} are dropped; the
   * batch's other models are still applied. Never called for per-block drops, which the index
   * counts itself.
   * @default none
   */
  readonly onRejected?: ((source: KvEventSource, error: IndexError) => void) | undefined;
}

/**
 * The sink that applies engines' KV events to the index. Per event:
 * - `BlockStored` adds its blocks for the replica (`replicaIdFor(source, rank)`) under the source's
 *   scheme as a chain-stored event: token counts follow the parent, on the tier its `medium` names.
 *   Blocks of a LoRA adapter are indexed with the adapter's name as the model, so lookups for the
 *   base model never match them. An event without token ids (an offload copy) adds the tier only
 *   to blocks the index knows.
 * - `BlockRemoved` removes its blocks from that tier, under every model the replica stored blocks
 *   for (a removal does not name the adapter; hashes of different models never collide): at most
 *   1 + {@link MAX_LORA_ADAPTERS_PER_REPLICA} publishes per removal.
 * - `AllBlocksCleared` clears the replica (that tier, or every tier) under every such model; when
 *   every tier is cleared, the replica's models are just the base model again.
 * Consecutive events for one model go to the index as one batch, in order. `clear()` for a restart
 * or a gap likewise leaves the replica with the base model only.
 */
export function createIndexKvEventSink(options: IndexKvEventSinkOptions): KvEventSink {
  return new IndexKvEventSink(options);
}

/**
 * LoRA adapters one replica's blocks are indexed for, besides the base model, until its cache is
 * cleared as a whole. A removal names no adapter, so it is applied under every model the replica
 * stored blocks for: without a cap, an engine naming thousands of adapters would make each removal
 * thousands of publishes, blocking the event loop for seconds. vLLM serves at most
 * `--max-loras` adapters at once (1 by default, rarely above 16-32), and blocks of an adapter it
 * swapped out can stay cached for a while: 64 leaves room for that churn. Blocks of a further
 * adapter are dropped and reported to `onRejected`; lookups for it miss, which only costs hints.
 */
export const MAX_LORA_ADAPTERS_PER_REPLICA = 64;

/** `medium` as engines spell it -> the index's tier; any other medium is "other". */
export function tierOfMedium(medium: string): StorageTier {
  switch (medium.toUpperCase()) {
    case "GPU":
      return "gpu";
    case "CPU":
      return "cpu";
    case "DISK":
      return "disk";
    default:
      return "other";
  }
}

/** The models one (source, rank) has stored blocks under, by source name then replica id. */
type ModelsSeen = Map<string, Map<string, Set<ModelId>>>;

class IndexKvEventSink implements KvEventSink {
  readonly #index: IndexKvEventSinkOptions["index"];
  readonly #onRejected: IndexKvEventSinkOptions["onRejected"];
  readonly #models: ModelsSeen = new Map();

  constructor(options: IndexKvEventSinkOptions) {
    this.#index = options.index;
    this.#onRejected = options.onRejected;
  }

  apply(source: KvEventSource, batch: KvEventBatch): void {
    const replicaId = replicaIdFor(source, batch.dataParallelRank);
    const models = this.#modelsOf(source, replicaId);
    let model: ModelId | undefined;
    let events: CacheEvent[] = [];
    const flush = () => {
      if (model !== undefined && events.length > 0) this.#publish(source, model, replicaId, events);
      events = [];
    };
    const emit = (target: ModelId, event: CacheEvent) => {
      if (target !== model) {
        flush();
        model = target;
      }
      events.push(event);
    };
    for (const event of batch.events) {
      if (event.type === "BlockStored") {
        const target = event.loraName ?? source.model;
        if (target !== source.model && !models.has(target)) {
          // Checked before the adapter joins the replica's models: a name the index refuses would
          // otherwise have every later removal and clear of the replica rejected with it.
          const problem = nameProblem("lora_name", target, true);
          if (problem !== undefined) {
            this.#onRejected?.(source, problemError(problem));
            continue;
          }
          // `models` holds the base model besides the adapters.
          if (models.size > MAX_LORA_ADAPTERS_PER_REPLICA) {
            this.#onRejected?.(source, tooManyAdapters(target, models.size, replicaId));
            continue;
          }
          models.add(target);
        }
        emit(target, chainStored(source, event));
      } else {
        const removal = removalOf(event);
        for (const target of models) emit(target, removal);
        if (event.type === "AllBlocksCleared" && event.medium === undefined) {
          forgetAdapters(models, source);
        }
      }
    }
    flush();
  }

  clear(source: KvEventSource, rank: number | undefined, reason: ClearReason): void {
    const bySource = this.#models.get(source.name);
    // A removed source takes every replica it published for; a gap or restart is one rank's (the
    // replica of batches without a rank, when `rank` is undefined).
    const replicaIds =
      reason === "removed" ? [...(bySource?.keys() ?? [])] : [replicaIdFor(source, rank)];
    for (const replicaId of replicaIds) {
      const models = bySource?.get(replicaId) ?? new Set([source.model]);
      for (const model of models) {
        this.#publish(source, model, replicaId, [{ type: "all-cleared" }]);
        // A removed source's stream is gone: nothing vouches for what the replica holds any more,
        // should it be written to some other way.
        if (reason === "removed") {
          this.#index.keepAlive(
            { tenant: source.tenant, model, replicaId },
            Number.NEGATIVE_INFINITY,
          );
        }
      }
      if (reason === "removed") bySource?.delete(replicaId);
      else forgetAdapters(models, source);
    }
    if (reason === "removed") this.#models.delete(source.name);
  }

  keepAlive(source: KvEventSource, ranks: readonly (number | undefined)[], until: number): void {
    const bySource = this.#models.get(source.name);
    if (bySource === undefined) return;
    for (const rank of ranks) {
      const replicaId = replicaIdFor(source, rank);
      for (const model of bySource.get(replicaId) ?? []) {
        this.#index.keepAlive({ tenant: source.tenant, model, replicaId }, until);
      }
    }
  }

  #modelsOf(source: KvEventSource, replicaId: string): Set<ModelId> {
    let bySource = this.#models.get(source.name);
    if (bySource === undefined) {
      bySource = new Map();
      this.#models.set(source.name, bySource);
    }
    let models = bySource.get(replicaId);
    if (models === undefined) {
      models = new Set([source.model]);
      bySource.set(replicaId, models);
    }
    return models;
  }

  #publish(source: KvEventSource, model: ModelId, replicaId: string, events: CacheEvent[]): void {
    try {
      this.#index.publish({
        tenant: source.tenant,
        model,
        replicaId,
        hashScheme: source.hashScheme,
        events,
      });
    } catch (error) {
      if (!(error instanceof IndexError)) throw error;
      this.#onRejected?.(source, error);
    }
  }
}

/**
 * After the replica's whole cache was cleared (its clears published under every model), it holds
 * no adapter's blocks: later removals go to the base model only, and the cap counts afresh.
 */
function forgetAdapters(models: Set<ModelId>, source: KvEventSource): void {
  models.clear();
  models.add(source.model);
}

/** What `onRejected` is told when blocks of an adapter past the cap are dropped. */
function tooManyAdapters(loraName: string, position: number, replicaId: string): IndexError {
  return new IndexError(
    "invalid-argument",
    "lora_name",
    `lora_name ${JSON.stringify(loraName)} would be adapter ${position} of replica ${replicaId}; at most ${MAX_LORA_ADAPTERS_PER_REPLICA} are indexed until it clears its cache`,
  );
}

function chainStored(
  source: KvEventSource,
  event: Extract<KvEvent, { type: "BlockStored" }>,
): CacheEvent {
  return {
    type: "chain-stored",
    parentHash: event.parentBlockHash,
    prefixHashes: event.blockHashes,
    blockSize: event.blockSize > 0 ? event.blockSize : source.blockSize,
    tier: tierOfMedium(event.medium),
    // Engines send no token ids with a copy of blocks to another medium.
    knownBlocksOnly: event.tokenCount === 0 && event.blockHashes.length > 0,
  };
}

function removalOf(event: Exclude<KvEvent, { type: "BlockStored" }>): CacheEvent {
  if (event.type === "BlockRemoved") {
    return {
      type: "prefix-evicted",
      prefixes: event.blockHashes.map((prefixHash) => ({ prefixHash, tokenCount: 0 })),
      tier: tierOfMedium(event.medium),
    };
  }
  return {
    type: "all-cleared",
    tier: event.medium === undefined ? undefined : tierOfMedium(event.medium),
  };
}
