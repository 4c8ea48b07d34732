/**
 * KV-cache events as vLLM and SGLang publish them, decoded: the payload frame of a message on an
 * engine's KV-event stream. Names follow the engines' wire names, camelCased; the wire format is
 * described in docs/vllm-kv-events.md.
 */

/**
 * An engine's block hash, as bytes; never a JS number, which cannot hold 64 bits. One form whatever
 * msgpack width the engine's encoder picked:
 * - an integer (vLLM's unsigned low 64 bits, SGLang's signed int64, or a small value some encoder
 *   wrote as a fixint) is its 64-bit two's complement, 8 bytes big-endian;
 * - bytes (vLLM with integer hashes off: the 32-byte digest) are those bytes.
 *
 * The same shape as the index's `PrefixHash`, so it passes through without conversion. It may be
 * empty or longer than the index accepts; the index drops and counts those.
 */
export type BlockHash = Uint8Array;

/** The medium a stored or removed block without a `medium` field lives on. */
export const DEFAULT_KV_MEDIUM = "GPU";

/**
 * Blocks an engine now holds: consecutive blocks of one sequence, head first, chained to
 * `parentBlockHash`.
 */
export interface BlockStoredEvent {
  readonly type: "BlockStored";
  /** Never absent on the wire (an event without it is malformed); may be empty. */
  readonly blockHashes: readonly BlockHash[];
  /** The block before the first one; undefined when the sequence starts at the root. */
  readonly parentBlockHash: BlockHash | undefined;
  /**
   * How many token ids the event carried: `blockSize` per block, or 0 for offload events (a copy
   * to another medium carries no tokens). The ids themselves are not kept: the index never hashes.
   */
  readonly tokenCount: number;
  /** Tokens per block; 0 when the event did not say. */
  readonly blockSize: number;
  /** Deprecated by the engines in favour of `loraName`; undefined when absent or nil. */
  readonly loraId: number | undefined;
  /** "GPU", "CPU", "DISK", ... as the engine spelled it; {@link DEFAULT_KV_MEDIUM} when absent or nil. */
  readonly medium: string;
  /** The LoRA adapter the blocks were computed with; undefined for the base model. */
  readonly loraName: string | undefined;
  /** Hybrid models: which KV-cache group the blocks belong to; undefined when not said. */
  readonly groupIdx: number | undefined;
  /** Hybrid models: the group's kind (full attention, sliding window, ...); undefined when not said. */
  readonly kvCacheSpecKind: string | undefined;
}

/** Blocks an engine no longer holds on one medium. */
export interface BlockRemovedEvent {
  readonly type: "BlockRemoved";
  /** Never absent on the wire (an event without it is malformed); may be empty. */
  readonly blockHashes: readonly BlockHash[];
  /** As in {@link BlockStoredEvent}: {@link DEFAULT_KV_MEDIUM} when absent or nil. */
  readonly medium: string;
  /** As in {@link BlockStoredEvent}. */
  readonly groupIdx: number | undefined;
}

/** The engine dropped every block it held. */
export interface AllBlocksClearedEvent {
  readonly type: "AllBlocksCleared";
  /**
   * Engines send no fields today. When a map-layout event names a medium, only that medium was
   * cleared; undefined means every medium (the safe reading: forgetting blocks only costs hints).
   */
  readonly medium: string | undefined;
}

/** One decoded KV-cache event. */
export type KvEvent = BlockStoredEvent | BlockRemovedEvent | AllBlocksClearedEvent;

/** One payload frame: the events one engine step produced, to apply in order. */
export interface KvEventBatch {
  /** When the engine built the batch, in seconds since the Unix epoch (its wall clock). */
  readonly ts: number;
  /** The events of known types, in wire order. */
  readonly events: readonly KvEvent[];
  /** The publishing data-parallel rank; undefined when the batch did not carry one. */
  readonly dataParallelRank: number | undefined;
  /** Events of types this decoder does not know, skipped (they are not in `events`). */
  readonly skippedEvents: number;
}
