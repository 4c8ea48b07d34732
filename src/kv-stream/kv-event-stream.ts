import type { KvEventSource } from "../kv-events/kv-event-source.js";

/** How long a stream's replicas stay valid past its last sign of life, unless configured. */
export const DEFAULT_LIVENESS_WINDOW_MS = 30_000;

/** Where streams and their configuration report what an operator should know. A pino logger fits. */
export interface KvEventStreamLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * A stream's connection to its engine's publisher:
 * - `connecting`: configured, never connected yet;
 * - `connected`: the ZMTP handshake completed and the connection holds (heartbeats answered);
 * - `disconnected`: it was connected and is not any more, or reading from it failed; reconnecting
 *   (or reading again) with backoff.
 */
export type KvEventConnection = "connecting" | "connected" | "disconnected";

/** Counts by event type of the batches applied for one replica. */
export interface KvEventTypeCounts {
  readonly BlockStored: number;
  readonly BlockRemoved: number;
  readonly AllBlocksCleared: number;
  /** Events of types the decoder does not know, skipped. */
  readonly unknown: number;
}

/** One data-parallel rank of a stream, as seen so far. Counters count since the stream started. */
export interface KvEventReplicaState {
  /** The batch's `data_parallel_rank`; undefined for batches without one. */
  readonly rank: number | undefined;
  /** The id its batches are indexed under (`replicaIdFor(source, rank)`). */
  readonly replicaId: string;
  /** The seq of the last batch applied; undefined until one is. */
  readonly lastSeq: number | undefined;
  /** Seconds since the last batch was applied (live or replayed); undefined until one is. */
  readonly lastBatchAgeSeconds: number | undefined;
  /** Batches applied. */
  readonly batches: number;
  /** Events in the batches applied, by type. */
  readonly events: KvEventTypeCounts;
  /** Times batches were found missing (seq jumped forward). */
  readonly gaps: number;
  /** Gaps filled from the engine's replay endpoint. */
  readonly replays: number;
  /** Replays that could not fill their gap (timeout, buffer too short, engine restarted). */
  readonly replayFailures: number;
  /** Engine restarts detected: seq went backwards, or a replay showed a different history. */
  readonly restarts: number;
  /** Times the replica was cleared, by reason. */
  readonly clears: { readonly gap: number; readonly restart: number };
}

/** A stream's state at one moment: configuration, connection, and per-replica progress. */
export interface KvEventStreamState {
  readonly source: KvEventSource;
  readonly connection: KvEventConnection;
  /** Messages whose frames were not `[topic, seq (8 bytes), payload]` (live) or a replay reply. */
  readonly framingErrors: number;
  /** Payloads the decoder rejected, live or replayed. The replica a bad payload was for is unknown. */
  readonly decodeErrors: number;
  /** One entry per data-parallel rank seen, in the order first seen. */
  readonly replicas: readonly KvEventReplicaState[];
}

/** One engine's KV-event stream, subscribed while it exists. */
export interface KvEventStream {
  /** The source it reads, as configured. */
  readonly source: KvEventSource;
  /** A snapshot of its state. O(ranks seen). */
  state(): KvEventStreamState;
  /**
   * Stops reading: closes its sockets, cancels a replay in progress and its timers, then resolves.
   * Nothing is applied to the sink after it resolves. Idempotent.
   */
  close(): Promise<void>;
}
