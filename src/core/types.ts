/**
 * The index's domain vocabulary. Field names follow the gRPC contract (camelCased) so that the edge
 * converts messages without renaming anything.
 */

/** A tenant: the outermost isolation boundary. Never empty. */
export type TenantId = string;
/** A model (or adapter) name. Never empty. */
export type ModelId = string;
/** A replica (one engine instance, or one data-parallel rank of it). Never empty. */
export type ReplicaId = string;
/**
 * An opaque label naming how prefix hashes were computed (algorithm, seed, block size). Hashes are
 * only ever compared within one scheme.
 */
export type HashScheme = string;
/** An opaque prefix-block hash, 1 to {@link MAX_PREFIX_HASH_BYTES} bytes. */
export type PrefixHash = Uint8Array;

/** The longest prefix hash accepted, in bytes. */
export const MAX_PREFIX_HASH_BYTES = 64;

/** The largest token count kept (2^31 - 1): a larger one, which no sequence has, is taken as this. */
export const MAX_TOKEN_COUNT = 0x7fffffff;

/** The longest tenant, model, replica id or scheme label accepted, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 256;
/**
 * The most hash schemes one replica (under one tenant and model) holds entries under at a time. A
 * replica hashes with one scheme, or two while it changes; the bound keeps what an eviction naming
 * no scheme costs (a probe per scheme per prefix) and the state per replica small. Prefixes written
 * under a further scheme are dropped as `too-many-hash-schemes` until one of the 8 holds nothing.
 */
export const MAX_SCHEMES_PER_REPLICA = 8;

/**
 * Where a replica keeps a block: engines offload KV blocks from GPU memory to CPU memory or disk,
 * and a block further from the GPU costs more to bring back. A block may sit on several tiers.
 */
export type StorageTier = "gpu" | "cpu" | "disk" | "other";

/** Every tier, fastest first: the order ties between equally weighted tiers are broken in. */
export const STORAGE_TIERS: readonly StorageTier[] = ["gpu", "cpu", "disk", "other"];

/** One prefix block a replica holds. */
export interface PrefixEntry {
  readonly prefixHash: PrefixHash;
  /**
   * Tokens covered from the start of the sequence through this block; 0 = unknown, which keeps the
   * count the block already has.
   */
  readonly tokenCount: number;
}

/** A replica's load, as last reported. */
export interface ReplicaStats {
  readonly activeRequests: number;
  readonly queuedRequests: number;
  /** Fraction of the KV cache in use, 0 to 1. */
  readonly kvCacheUsage: number;
}

/** Why part of a write was not applied. */
export type DropReason =
  | "hash-scheme-missing"
  | "prefix-hash-empty"
  | "prefix-hash-too-long"
  | "unknown-event-type"
  | "unknown-block"
  | "too-many-hash-schemes";

/** Every drop reason, in the order they are reported. */
export const DROP_REASONS: readonly DropReason[] = [
  "hash-scheme-missing",
  "prefix-hash-empty",
  "prefix-hash-too-long",
  "unknown-event-type",
  "unknown-block",
  "too-many-hash-schemes",
];

/** Items dropped, by reason. */
export type DropCounts = Record<DropReason, number>;

/**
 * Why holder entries left the index. `ttl` is counted by sweeps, and by writes when the cap pushes
 * out entries that had already expired.
 */
export type EvictionReason = "ttl" | "cap" | "event" | "cleared";

/** Holder entries removed, by reason. */
export type EvictionCounts = Record<EvictionReason, number>;

/** An incremental report of prefixes one replica holds (and optionally its stats). */
export interface CacheReport {
  readonly tenant: TenantId;
  readonly model: ModelId;
  readonly replicaId: ReplicaId;
  /** Empty means missing: every prefix is dropped, the stats still apply. */
  readonly hashScheme: HashScheme;
  readonly prefixes: readonly PrefixEntry[];
  readonly stats?: ReplicaStats | undefined;
}

/** What a report did. */
export interface ReportOutcome {
  /** Prefixes added or refreshed. */
  readonly accepted: number;
  readonly dropped: DropCounts;
  /** Entries of any scope pushed out to stay within the cap (`cap`, or `ttl` if already expired). */
  readonly evicted: EvictionCounts;
}

/** One change in a replica's cache. */
export type CacheEvent =
  | {
      readonly type: "prefix-added";
      readonly prefixes: readonly PrefixEntry[];
      readonly stats?: ReplicaStats | undefined;
      /** The tier the blocks are now held on (added to any others they are on). @default "gpu" */
      readonly tier?: StorageTier | undefined;
    }
  | ChainStoredEvent
  | {
      readonly type: "prefix-evicted";
      readonly prefixes: readonly PrefixEntry[];
      readonly stats?: ReplicaStats | undefined;
      /** Only this tier is dropped; a block still on another tier stays. Undefined: every tier. */
      readonly tier?: StorageTier | undefined;
    }
  | { readonly type: "replica-updated"; readonly stats?: ReplicaStats | undefined }
  | {
      readonly type: "all-cleared";
      readonly stats?: ReplicaStats | undefined;
      /** Only this tier is cleared. Undefined: every tier. */
      readonly tier?: StorageTier | undefined;
    }
  /** A type this index does not know: ignored and counted. */
  | { readonly type: "unknown" };

/**
 * Consecutive blocks of one sequence a replica now holds, as engines announce them: chained to a
 * parent rather than carrying token counts. Block i (from 0) covers the parent's tokens plus
 * (i + 1) x blockSize; with no parent, (i + 1) x blockSize. When the parent is unknown to the index
 * (or its count is), the blocks are still indexed and their count is unknown (0, keeping any count
 * the blocks already have).
 */
export interface ChainStoredEvent {
  readonly type: "chain-stored";
  /** The block before the first; undefined when the sequence starts at the root. */
  readonly parentHash: PrefixHash | undefined;
  /** Head first. */
  readonly prefixHashes: readonly PrefixHash[];
  /** Tokens per block; 0 when unknown (every count is then unknown). */
  readonly blockSize: number;
  /** @default "gpu" */
  readonly tier?: StorageTier | undefined;
  /**
   * A copy to another tier of blocks the engine already announced (an offload carries no tokens):
   * only blocks the index already knows under the scheme are added; the rest are dropped and
   * counted as `unknown-block`. Their token counts stay as they are: `blockSize` and `parentHash`
   * are not used to count them (an offload of a sequence's later blocks names no parent).
   */
  readonly knownBlocksOnly: boolean;
  readonly stats?: ReplicaStats | undefined;
}

/** One replica's events, applied in order. */
export interface EventBatch {
  readonly tenant: TenantId;
  readonly model: ModelId;
  readonly replicaId: ReplicaId;
  /** Empty means none: additions are ignored, evictions apply to every scheme. */
  readonly hashScheme: HashScheme;
  readonly events: readonly CacheEvent[];
}

/** What a batch of events did. */
export interface PublishOutcome {
  readonly applied: number;
  /** Events ignored as a whole. */
  readonly ignored: number;
  /** Prefixes added or refreshed by applied events. */
  readonly addedPrefixes: number;
  /** Ignored events and prefixes dropped from applied events, by reason. */
  readonly dropped: DropCounts;
  readonly evicted: EvictionCounts;
}

/** A gateway's question: who holds this chain? */
export interface RouteQuery {
  readonly tenant: TenantId;
  readonly model: ModelId;
  readonly hashScheme: HashScheme;
  /** The request's block hashes, head first. */
  readonly prefixHashes: readonly PrefixHash[];
  /** When not empty, only these replicas may be hinted. */
  readonly candidateReplicaIds: readonly ReplicaId[];
  /** Most hints to return; 0 = the index's default. */
  readonly maxHints: number;
}

/** Why a route answer is what it is. */
export type RouteReason = "prefix-match" | "no-hint" | "hash-scheme-missing" | "invalid-request";

/** One replica ranked for a query. */
export interface ReplicaHint {
  readonly replicaId: ReplicaId;
  /** Leading blocks held consecutively from the head of the chain. */
  readonly matchedBlocks: number;
  /** tokenCount of the deepest matched block. */
  readonly matchedTokens: number;
  /** In (0, 1]: 1 when just confirmed, 0.5 at the TTL (see `freshnessAt`). */
  readonly freshness: number;
  /**
   * The slowest tier among the matched blocks, each block counting at the best tier it is held on:
   * the tier whose weight the score carries. Of blocks' tiers that weigh alike, the later in
   * STORAGE_TIERS; a block held on several tiers that weigh alike counts at the earlier.
   */
  readonly tier: StorageTier;
  /** matchedTokens x freshness x the tier's weight. */
  readonly score: number;
  readonly stats: ReplicaStats | undefined;
}

/** The answer to a {@link RouteQuery}. Lookups never throw for content problems. */
export interface RouteAnswer {
  readonly reason: RouteReason;
  /** Best first; empty unless reason is `prefix-match`. */
  readonly hints: readonly ReplicaHint[];
  /** With `invalid-request`: the contract's name of the field at fault. Otherwise "". */
  readonly invalidField: string;
  /** The chain was longer than the index's maximum and only its head was evaluated. */
  readonly chainTruncated: boolean;
  readonly evaluatedBlocks: number;
  /** A human-readable note for operators; "" when there is nothing to add. */
  readonly detail: string;
}

/** Which aggregate to describe. */
export interface ScopeQuery {
  readonly tenant: TenantId;
  readonly model: ModelId;
  /** When set, counts cover only this scheme. */
  readonly hashScheme?: HashScheme | undefined;
}

/** One replica under one (tenant, model). */
export interface ReplicaRef {
  readonly tenant: TenantId;
  readonly model: ModelId;
  readonly replicaId: ReplicaId;
}

/** What the index knows of one replica. */
export interface ReplicaState {
  readonly replicaId: ReplicaId;
  readonly stats: ReplicaStats | undefined;
  readonly prefixCount: number;
  /**
   * When it was last heard from, on the index's clock: a report, a batch, or a sweep renewing its
   * entries while it is kept alive.
   */
  readonly lastSeenAt: number;
}

/** The aggregate of one (tenant, model). */
export interface ScopeState {
  /** Sorted by replica id. */
  readonly replicas: readonly ReplicaState[];
  readonly totalEntries: number;
  /** Sorted by scheme label. */
  readonly hashSchemes: readonly { readonly hashScheme: HashScheme; readonly entries: number }[];
}

/** What one sweep step removed. */
export interface SweepOutcome {
  readonly expiredEntries: number;
  /** Entries that reached the TTL while their replica was kept alive, confirmed again instead. */
  readonly renewedEntries: number;
  readonly removedReplicas: number;
  /** False when the step stopped at its budget with expired entries left. */
  readonly done: boolean;
}

/** Index-wide sizes, for gauges. */
export interface IndexSize {
  /** Holder entries ((prefix, replica) pairs), every scope. */
  readonly entries: number;
  /** Holder entries per model, summed over tenants and schemes. Models with none are absent. */
  readonly entriesByModel: ReadonlyMap<ModelId, number>;
  readonly replicas: number;
}

/** A DropCounts with every reason at zero. */
export function emptyDropCounts(): DropCounts {
  return {
    "hash-scheme-missing": 0,
    "prefix-hash-empty": 0,
    "prefix-hash-too-long": 0,
    "unknown-event-type": 0,
    "unknown-block": 0,
    "too-many-hash-schemes": 0,
  };
}

/** An EvictionCounts with every reason at zero. */
export function emptyEvictionCounts(): EvictionCounts {
  return { ttl: 0, cap: 0, event: 0, cleared: 0 };
}
