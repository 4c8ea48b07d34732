import type { KvEventSource } from "./kv-event-source.js";
import type { KvEventBatch } from "./kv-event-types.js";

/** Why a stream's replica was forgotten. */
export type ClearReason =
  /** `seq` went backwards: the engine restarted and holds nothing it held before. */
  | "restart"
  /** Batches were lost and could not be replayed (no replay endpoint, or older than its buffer). */
  | "gap"
  /** The source left the configuration. */
  | "removed";

/**
 * Where a stream hands what it receives, in order. The subscriber owns ordering and recovery (seq,
 * replay, restarts); the sink owns what events mean to the index. Every method is synchronous and
 * never throws for content problems.
 */
export interface KvEventSink {
  /** Applies one decoded batch from `source`, in seq order, exactly once. */
  apply(source: KvEventSource, batch: KvEventBatch): void;
  /**
   * Forgets everything the replica behind (`source`, `rank`) holds (`rank` undefined: the replica
   * of batches without a rank); with reason `removed`, every replica the source has published for.
   */
  clear(source: KvEventSource, rank: number | undefined, reason: ClearReason): void;
  /**
   * The stream is live and gap-free for `ranks`: the replicas behind (`source`, rank) still hold
   * what they announced, so their entries stay valid until `until` (index clock, ms) even past the
   * TTL. Replicas of other ranks are left to age.
   */
  keepAlive(source: KvEventSource, ranks: readonly (number | undefined)[], until: number): void;
}
