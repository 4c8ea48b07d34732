import { Dealer, Subscriber } from "zeromq";
import type { Clock } from "../core/clock.js";
import { decodeKvEventBatch } from "../kv-events/kv-event-decoder.js";
import type { ClearReason, KvEventSink } from "../kv-events/kv-event-sink.js";
import { type KvEventSource, replicaIdFor } from "../kv-events/kv-event-source.js";
import type { KvEventBatch } from "../kv-events/kv-event-types.js";
import { encodeSeq, REPLAY_END_SEQ, readLiveFrames, readReplayFrames } from "./kv-event-frames.js";
import {
  DEFAULT_LIVENESS_WINDOW_MS,
  type KvEventConnection,
  type KvEventReplicaState,
  type KvEventStream,
  type KvEventStreamLogger,
  type KvEventStreamState,
} from "./kv-event-stream.js";
import { createLogThrottle, type LogThrottle } from "./log-throttle.js";
import { decideSeq } from "./stream-sequencer.js";

/** Options for {@link createZmqKvEventStream}. */
export interface ZmqKvEventStreamOptions {
  /** The engine to subscribe to. */
  readonly source: KvEventSource;
  /** Where batches go, in order, and clears and keep-alives. */
  readonly sink: KvEventSink;
  /** The index's clock (ms): keep-alive deadlines are on it, and batch ages are read from it. */
  readonly clock: Clock;
  /**
   * How long the replicas' entries stay valid past the last sign that the stream is live and
   * gap-free (a batch applied in order, or a keep-alive tick while connected). Keep-alives are sent
   * every quarter of it.
   * @default 30_000
   */
  readonly livenessWindowMs?: number;
  /**
   * How long a replay waits for each reply before giving up (the replica is then cleared).
   * @default 2_000
   */
  readonly replayTimeoutMs?: number;
  /** The first reconnection delay after the connection is lost (ZMQ_RECONNECT_IVL). @default 100 */
  readonly reconnectIntervalMs?: number;
  /** Reconnection delays double up to this (ZMQ_RECONNECT_IVL_MAX). @default 5_000 */
  readonly reconnectMaxIntervalMs?: number;
  /** How often a ZMTP heartbeat is sent to the engine (ZMQ_HEARTBEAT_IVL). @default 1_000 */
  readonly heartbeatIntervalMs?: number;
  /**
   * A connection whose heartbeat is not answered within this is dropped (ZMQ_HEARTBEAT_TIMEOUT).
   * @default 5_000
   */
  readonly heartbeatTimeoutMs?: number;
  /**
   * Live messages ZMQ queues while the stream is busy, e.g. during a replay (ZMQ_RCVHWM; the
   * engines' own default `hwm`). Past it the engine's PUB drops messages, which shows as a gap.
   * @default 100_000
   */
  readonly receiveHighWaterMark?: number;
  /**
   * At most one warning about malformed messages per this interval; the next says how many were
   * held back.
   * @default 10_000
   */
  readonly warningIntervalMs?: number;
  /**
   * Where connection changes, gaps, clears and malformed messages are logged.
   * @default nothing is logged
   */
  readonly logger?: KvEventStreamLogger;
}

type ResolvedOptions = Required<Omit<ZmqKvEventStreamOptions, "logger">> & {
  readonly logger: KvEventStreamLogger | undefined;
};

/**
 * Subscribes to one engine's KV-event PUB socket and feeds its batches to a sink, in seq order per
 * data-parallel rank (see docs/vllm-kv-events.md for the wire format):
 *
 * - Every message must be 3 frames `[topic, seq (8 bytes big-endian), msgpack payload]`; other
 *   framings and undecodable payloads are counted, logged at a bounded rate, and skipped. A skipped
 *   payload's batch is lost: its replica sees a gap at its next batch.
 * - Ordering follows {@link decideSeq}: the first batch per rank is the baseline; seq going
 *   backwards is an engine restart and clears that replica (`clear(source, rank, "restart")`).
 * - A gap (seq jumped forward) is recovered from `source.replayEndpoint`: a DEALER asks for every
 *   batch from the last applied seq on, the first reply must be that same batch (same seq and
 *   timestamp; otherwise the engine is a new process and the replica is cleared as restarted), and
 *   the missing batches are applied in order up to the one that revealed the gap. Live messages
 *   wait in ZMQ's queue meanwhile and are applied after. Without a replay endpoint, on a timeout,
 *   or when the engine's buffer no longer reaches back, the replica is cleared
 *   (`clear(source, rank, "gap")`) and the stream restarts from the current batch.
 * - After the connection was lost, an engine may have restarted and published batches the stream
 *   never saw, its seq reaching where the old one's stopped. So each rank's first batch after a
 *   reconnection, when it looks like the next one, is checked the same way when there is a replay
 *   endpoint: a different history clears the replica as restarted, and no answer clears it as for
 *   a gap. Without a replay endpoint such a batch is taken as the next one.
 * - While connected and not recovering a gap, `sink.keepAlive(source, now + livenessWindowMs)` is
 *   called after every applied batch and every quarter window; when the connection is lost it
 *   stops, so the replicas' entries age by their TTL once the window has passed.
 * - ZMQ reconnects with exponential backoff; ZMTP heartbeats detect a peer that vanished without
 *   closing its connection. The connection state comes from the socket's event observer, except
 *   that a failed read counts as a lost connection until a message is read again (reading starts
 *   again with backoff).
 *
 * The stream starts at once; `close()` stops it.
 */
export function createZmqKvEventStream(options: ZmqKvEventStreamOptions): KvEventStream {
  return new ZmqKvEventStream(resolveOptions(options));
}

function resolveOptions(options: ZmqKvEventStreamOptions): ResolvedOptions {
  return {
    source: options.source,
    sink: options.sink,
    clock: options.clock,
    livenessWindowMs: options.livenessWindowMs ?? DEFAULT_LIVENESS_WINDOW_MS,
    replayTimeoutMs: options.replayTimeoutMs ?? 2_000,
    reconnectIntervalMs: options.reconnectIntervalMs ?? 100,
    reconnectMaxIntervalMs: options.reconnectMaxIntervalMs ?? 5_000,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1_000,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 5_000,
    receiveHighWaterMark: options.receiveHighWaterMark ?? 100_000,
    warningIntervalMs: options.warningIntervalMs ?? 10_000,
    logger: options.logger,
  };
}

/** One data-parallel rank's progress; `lastSeq` and `lastTs` are those of the batch last applied. */
interface ReplicaProgress {
  readonly rank: number | undefined;
  readonly replicaId: string;
  lastSeq: bigint | undefined;
  /** The last applied batch's `ts`: a replay's first reply must match it to be the same history. */
  lastTs: number;
  lastBatchAt: number | undefined;
  /**
   * Whether the stream vouches for the replica (keeps it alive): from its first batch applied
   * until the connection is lost, and again from its next batch applied after that.
   */
  vouched: boolean;
  /**
   * Whether the connection was lost since the replica's history was last shown to be the engine's
   * (with a replay endpoint only): the engine may have restarted meanwhile, so the next batch is
   * checked against the replay buffer before it is applied.
   */
  unconfirmed: boolean;
  batches: number;
  stored: number;
  removed: number;
  allCleared: number;
  unknown: number;
  gaps: number;
  replays: number;
  replayFailures: number;
  restarts: number;
  gapClears: number;
  restartClears: number;
}

/** How a replay ended: the gap filled, a different history (a restarted engine), or not filled. */
type ReplayOutcome = "recovered" | "restarted" | { readonly failed: string };

const EMPTY_FRAME = new Uint8Array(0);
/**
 * Data-parallel ranks one stream keeps progress (and metric series) for; batches of further ranks
 * are skipped as malformed. Far above any engine's data-parallel size.
 */
export const MAX_RANKS = 1024;

class ZmqKvEventStream implements KvEventStream {
  readonly source: KvEventSource;
  readonly #options: ResolvedOptions;
  readonly #sink: KvEventSink;
  readonly #clock: Clock;
  readonly #logger: KvEventStreamLogger | undefined;
  readonly #subscriber: Subscriber;
  /** The replay socket, while a replay runs; closed by `close()` to cancel it. */
  #dealer: Dealer | undefined;
  /** What the socket's event observer last said of the connection. */
  #observed: KvEventConnection = "connecting";
  /**
   * Set when a read failed, cleared by the next message read. While set the stream counts as
   * disconnected, whatever the observer said; a message read never overrides a disconnect the
   * observer reported (messages queued before it are read after it).
   */
  #readFailed = false;
  /** Per data-parallel rank, in the order first seen. */
  readonly #replicas = new Map<number | undefined, ReplicaProgress>();
  #framingErrors = 0;
  #decodeErrors = 0;
  /** Set while a gap is being recovered: the stream is not known to be gap-free, so no keep-alive. */
  #recovering = false;
  /** How often the connection was lost: a recovery that spans a loss leaves the replica in doubt. */
  #disconnections = 0;
  /** keepAlive()'s scratch: the ranks vouched for. */
  readonly #vouched: (number | undefined)[] = [];
  #closed = false;
  readonly #warnings: LogThrottle;
  readonly #keepAliveTimer: NodeJS.Timeout;
  /** The receive loop; settles (never rejects) once the subscriber is closed. */
  readonly #receiving: Promise<void>;
  /** How long to wait before reading again after a failed read; doubles while reads fail. */
  #readRetryMs: number;
  /** Ends the wait before reading again after a failed read (set during that wait). */
  #wake: (() => void) | undefined;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#readRetryMs = options.reconnectIntervalMs;
    this.source = options.source;
    this.#sink = options.sink;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#warnings = createLogThrottle({
      clock: options.clock,
      intervalMs: options.warningIntervalMs,
    });
    this.#subscriber = new Subscriber({
      linger: 0,
      reconnectInterval: options.reconnectIntervalMs,
      reconnectMaxInterval: options.reconnectMaxIntervalMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      heartbeatTimeout: options.heartbeatTimeoutMs,
      receiveHighWaterMark: options.receiveHighWaterMark,
    });
    // "handshake" (not "connect") marks a peer that speaks ZMTP; "disconnect" covers a closed
    // connection and a heartbeat timeout alike.
    this.#subscriber.events.on("handshake", () => this.#setObserved("connected"));
    this.#subscriber.events.on("disconnect", () => this.#setObserved("disconnected"));
    try {
      this.#subscriber.connect(this.source.endpoint);
      this.#subscriber.subscribe(this.source.topic);
    } catch (error) {
      // libzmq refuses some endpoints the sources file cannot rule out (it resolves hosts its own
      // way): the socket and its observer would otherwise stay open, one set per attempt. Closing
      // the socket ends its observer too (closing that first leaves a rejection nobody handles).
      this.#subscriber.close();
      throw error;
    }
    this.#keepAliveTimer = setInterval(() => this.#keepAlive(), options.livenessWindowMs / 4);
    this.#keepAliveTimer.unref();
    this.#receiving = this.#receiveUntilClosed();
  }

  state(): KvEventStreamState {
    const now = this.#clock.now();
    const replicas: KvEventReplicaState[] = [];
    for (const replica of this.#replicas.values()) {
      replicas.push({
        rank: replica.rank,
        replicaId: replica.replicaId,
        lastSeq: replica.lastSeq === undefined ? undefined : Number(replica.lastSeq),
        lastBatchAgeSeconds:
          replica.lastBatchAt === undefined ? undefined : (now - replica.lastBatchAt) / 1000,
        batches: replica.batches,
        events: {
          BlockStored: replica.stored,
          BlockRemoved: replica.removed,
          AllBlocksCleared: replica.allCleared,
          unknown: replica.unknown,
        },
        gaps: replica.gaps,
        replays: replica.replays,
        replayFailures: replica.replayFailures,
        restarts: replica.restarts,
        clears: { gap: replica.gapClears, restart: replica.restartClears },
      });
    }
    return {
      source: this.source,
      connection: this.#connection(),
      framingErrors: this.#framingErrors,
      decodeErrors: this.#decodeErrors,
      replicas,
    };
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearInterval(this.#keepAliveTimer);
      this.#dealer?.close();
      this.#subscriber.close();
      this.#wake?.();
    }
    await this.#receiving;
  }

  /**
   * Reads until closed. A read that fails (libzmq gives up on the socket, which should not happen)
   * counts as a lost connection: nothing is vouched for any more, so the replicas' entries age out
   * after the liveness window instead of staying alive unheard. Reading starts again after the
   * reconnect interval, backing off to its maximum while reads keep failing.
   */
  async #receiveUntilClosed(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#receive();
        return;
      } catch (error) {
        if (this.#closed) return;
        const retryMs = this.#readRetryMs;
        this.#log(
          "error",
          { err: error, retryMs },
          "reading the KV-event stream failed; treated as a lost connection, reading again",
        );
        this.#setReadFailed(true);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
        this.#readRetryMs = Math.min(2 * retryMs, this.#options.reconnectMaxIntervalMs);
      }
    }
  }

  async #receive(): Promise<void> {
    // Ends when the subscriber is closed. One message at a time: while a gap is recovered, the
    // live messages behind it wait in ZMQ's queue.
    for await (const frames of this.#subscriber) {
      if (this.#closed) return;
      // Reading works again after a failed read (no handshake follows if the connection held).
      this.#setReadFailed(false);
      let recovery: Promise<void> | undefined;
      try {
        recovery = this.#onLiveMessage(frames);
      } catch (error) {
        // A sink that throws has a bug. Its batch counts as lost (its seq is not committed), so
        // the replica is recovered or cleared at its next batch, and the stream goes on.
        this.#log("error", { err: error }, "applying a KV-event batch failed; it was skipped");
      }
      if (recovery !== undefined) await recovery;
    }
  }

  /** Handles one live message; returns a promise only when it starts recovering a gap. */
  #onLiveMessage(frames: readonly Uint8Array[]): Promise<void> | undefined {
    const framed = readLiveFrames(frames);
    if (framed.error !== undefined) {
      this.#framingErrors++;
      this.#warnMalformed("framing", framed.error);
      return undefined;
    }
    const batch = this.#decode(framed.payload, framed.seq);
    if (batch === undefined) return undefined;
    const replica = this.#replicaFor(batch.dataParallelRank);
    if (replica === undefined) {
      // Each rank is a replica with metric series of its own: a stream may not mint them freely.
      this.#decodeErrors++;
      this.#warnMalformed(
        "payload",
        `data_parallel_rank ${batch.dataParallelRank} would be rank ${MAX_RANKS + 1} of one stream; at most ${MAX_RANKS} are kept`,
        framed.seq,
      );
      return undefined;
    }
    const decision = decideSeq(replica.lastSeq, framed.seq, "live");
    switch (decision.action) {
      case "apply":
        if (replica.unconfirmed) return this.#recover(replica, undefined, framed.seq, batch);
        break;
      case "gap":
        replica.gaps++;
        return this.#recover(replica, decision.firstMissing, framed.seq, batch);
      case "restart":
        replica.restarts++;
        this.#log(
          "warn",
          { rank: replica.rank, seq: String(framed.seq), lastSeq: String(replica.lastSeq) },
          "KV-event seq went backwards: the engine restarted; clearing its replica",
        );
        this.#clear(replica, "restart");
        replica.unconfirmed = false;
        break;
      case "skip":
        return undefined; // only replayed batches are skipped
    }
    this.#apply(replica, framed.seq, batch);
    this.#keepAlive();
    return undefined;
  }

  /**
   * Fills the gap before live batch `seq` from the replay endpoint, or clears the replica; then
   * applies the live batch. With `firstMissing` undefined, `seq` follows the last batch applied
   * and only the history is checked (after a reconnection). Never rejects.
   */
  async #recover(
    replica: ReplicaProgress,
    firstMissing: bigint | undefined,
    seq: bigint,
    batch: KvEventBatch,
  ): Promise<void> {
    this.#recovering = true;
    const disconnections = this.#disconnections;
    try {
      const outcome: ReplayOutcome =
        this.source.replayEndpoint === undefined
          ? { failed: "no replay endpoint is configured" }
          : await this.#replay(replica, this.source.replayEndpoint, seq);
      if (this.#closed) return;
      const checking = firstMissing === undefined;
      const gap = checking
        ? { rank: replica.rank, seq: String(seq) }
        : { rank: replica.rank, firstMissing: String(firstMissing), seq: String(seq) };
      if (outcome === "recovered") {
        if (checking) {
          this.#log("info", gap, "KV-event replay after reconnecting shows the same history");
        } else {
          replica.replays++;
          this.#log("info", gap, "KV-event gap filled from the engine's replay buffer");
        }
      } else if (outcome === "restarted") {
        replica.replayFailures++;
        replica.restarts++;
        this.#log("warn", gap, "KV-event replay shows another history: the engine restarted");
        this.#clear(replica, "restart");
      } else {
        if (this.source.replayEndpoint !== undefined) replica.replayFailures++;
        this.#log(
          "warn",
          { ...gap, reason: outcome.failed },
          checking
            ? "KV-event history after reconnecting cannot be checked; clearing the replica"
            : "KV-event batches lost and not recoverable; clearing the replica",
        );
        this.#clear(replica, "gap");
      }
      this.#apply(replica, seq, batch);
    } catch (error) {
      // A bug or a resource failure, not an engine's doing: whatever the index holds for the
      // replica may be missing batches, so it is cleared, and the stream starts again from the
      // live batch rather than finding a gap at every batch that follows.
      this.#log("error", { err: error }, "recovering a KV-event gap failed; clearing the replica");
      if (!this.#closed) this.#restartFrom(replica, seq, batch);
    } finally {
      this.#recovering = false;
      if (this.#disconnections === disconnections) {
        replica.unconfirmed = false;
      } else {
        // The connection was lost meanwhile: what was applied may be the old engine's last words,
        // and the next batch the new one's. Neither vouched for nor confirmed until checked again.
        this.#doubt(replica);
      }
    }
    this.#keepAlive();
  }

  /**
   * Asks the engine's replay ROUTER for every batch from the replica's last applied seq on, checks
   * that the first is the batch already applied, and applies the ones after it up to `untilSeq`
   * (exclusive). Closes its socket before it resolves; never rejects.
   */
  async #replay(
    replica: ReplicaProgress,
    endpoint: string,
    untilSeq: bigint,
  ): Promise<ReplayOutcome> {
    // A gap is only found after a baseline, so the replica has applied a batch.
    const from = replica.lastSeq as bigint;
    const timeout = this.#options.replayTimeoutMs;
    let dealer: Dealer;
    try {
      dealer = new Dealer({ linger: 0, receiveTimeout: timeout, sendTimeout: timeout });
    } catch (error) {
      // Typically the process is out of sockets or file descriptors.
      return { failed: `cannot open a socket to ${endpoint}: ${String(error)}` };
    }
    this.#dealer = dealer;
    try {
      dealer.connect(endpoint);
      await dealer.send([EMPTY_FRAME, encodeSeq(from)]);
      let sameHistory = false;
      for (;;) {
        const frames = await dealer.receive();
        if (this.#closed) return { failed: "the stream was closed" };
        const framed = readReplayFrames(frames);
        if (framed.error !== undefined) {
          this.#framingErrors++;
          this.#warnMalformed("framing", `replay: ${framed.error}`);
          continue;
        }
        if (framed.seq === REPLAY_END_SEQ) {
          return { failed: `the replay ended before seq ${untilSeq - 1n}` };
        }
        const batch = this.#decode(framed.payload, framed.seq);
        if (batch === undefined || batch.dataParallelRank !== replica.rank) continue;
        if (framed.seq < from) continue;
        if (!sameHistory) {
          if (framed.seq > from) {
            return { failed: `the engine's replay buffer starts after seq ${from}` };
          }
          if (batch.ts !== replica.lastTs) return "restarted";
          sameHistory = true;
          // Only the history was in doubt (after a reconnection): nothing is missing.
          if (from + 1n === untilSeq) return "recovered";
          continue;
        }
        const decision = decideSeq(replica.lastSeq, framed.seq, "replay");
        if (decision.action === "skip") continue;
        if (decision.action === "gap") {
          return { failed: `seq ${decision.firstMissing} is missing from the replay` };
        }
        this.#apply(replica, framed.seq, batch);
        if (framed.seq + 1n === untilSeq) return "recovered";
      }
    } catch (error) {
      if (this.#closed) return { failed: "the stream was closed" };
      const code = (error as { code?: unknown }).code;
      return {
        failed:
          code === "EAGAIN"
            ? `no reply from ${endpoint} within ${timeout} ms`
            : `replay from ${endpoint} failed: ${String(error)}`,
      };
    } finally {
      this.#dealer = undefined;
      dealer.close();
    }
  }

  #decode(payload: Uint8Array, seq: bigint): KvEventBatch | undefined {
    const decoded = decodeKvEventBatch(payload);
    if (decoded.error === undefined) return decoded.batch;
    this.#decodeErrors++;
    this.#warnMalformed("payload", decoded.error, seq);
    return undefined;
  }

  #apply(replica: ReplicaProgress, seq: bigint, batch: KvEventBatch): void {
    this.#sink.apply(this.source, batch);
    replica.vouched = true;
    replica.lastSeq = seq;
    replica.lastTs = batch.ts;
    replica.lastBatchAt = this.#clock.now();
    replica.batches++;
    for (const event of batch.events) {
      if (event.type === "BlockStored") replica.stored++;
      else if (event.type === "BlockRemoved") replica.removed++;
      else replica.allCleared++;
    }
    replica.unknown += batch.skippedEvents;
  }

  /** Clears the replica after a failed recovery and makes `batch` its new baseline. */
  #restartFrom(replica: ReplicaProgress, seq: bigint, batch: KvEventBatch): void {
    try {
      this.#clear(replica, "gap");
      this.#apply(replica, seq, batch);
    } catch (error) {
      this.#log("error", { err: error }, "KV-event batch could not be applied; skipped");
      replica.lastSeq = seq;
      replica.lastTs = batch.ts;
    }
  }

  #clear(replica: ReplicaProgress, reason: Exclude<ClearReason, "removed">): void {
    this.#sink.clear(this.source, replica.rank, reason);
    if (reason === "gap") replica.gapClears++;
    else replica.restartClears++;
  }

  #keepAlive(): void {
    if (this.#closed || this.#recovering || this.#connection() !== "connected") return;
    this.#vouch();
  }

  /** Keeps the replicas of the ranks vouched for alive for the liveness window from now. */
  #vouch(): void {
    const ranks = this.#vouched;
    ranks.length = 0;
    for (const replica of this.#replicas.values()) if (replica.vouched) ranks.push(replica.rank);
    if (ranks.length === 0) return;
    this.#sink.keepAlive(this.source, ranks, this.#clock.now() + this.#options.livenessWindowMs);
  }

  /** The rank's progress, created on first sight; undefined past {@link MAX_RANKS} ranks. */
  #replicaFor(rank: number | undefined): ReplicaProgress | undefined {
    let replica = this.#replicas.get(rank);
    if (replica === undefined) {
      if (this.#replicas.size >= MAX_RANKS) return undefined;
      replica = {
        rank,
        replicaId: replicaIdFor(this.source, rank),
        lastSeq: undefined,
        lastTs: Number.NaN,
        lastBatchAt: undefined,
        batches: 0,
        stored: 0,
        removed: 0,
        allCleared: 0,
        unknown: 0,
        gaps: 0,
        replays: 0,
        replayFailures: 0,
        restarts: 0,
        gapClears: 0,
        restartClears: 0,
        vouched: false,
        unconfirmed: false,
      };
      this.#replicas.set(rank, replica);
    }
    return replica;
  }

  /** The connection as reported: disconnected while reads fail, else what the observer said. */
  #connection(): KvEventConnection {
    return this.#readFailed ? "disconnected" : this.#observed;
  }

  #setObserved(observed: KvEventConnection): void {
    // libzmq reports a disconnect for a connection that closed before any handshake (a port that
    // accepts but does not speak ZMTP): never connected and with nothing read, the stream is still
    // connecting. (Once a batch is read, a disconnect counts, whatever the observer said before.)
    if (
      observed === "disconnected" &&
      this.#observed === "connecting" &&
      this.#replicas.size === 0
    ) {
      return;
    }
    const before = this.#connection();
    this.#observed = observed;
    this.#connectionChanged(before);
  }

  #setReadFailed(failed: boolean): void {
    if (this.#readFailed === failed) return;
    if (!failed) this.#readRetryMs = this.#options.reconnectIntervalMs;
    const before = this.#connection();
    this.#readFailed = failed;
    this.#connectionChanged(before);
  }

  /** Acts on a change of the connection as reported, from `before`. */
  #connectionChanged(before: KvEventConnection): void {
    const connection = this.#connection();
    if (this.#closed || before === connection) return;
    const wasConnected = before === "connected";
    if (wasConnected && !this.#recovering) {
      // The liveness window runs from the moment the stream went, not from the timer's last tick.
      this.#vouch();
    }
    if (connection === "disconnected") {
      // An engine may restart while away, and an idle one would not say so: each rank is vouched
      // for again once it has a batch applied (a restarted rank's first batch, its seq starting
      // over, clears its replica first; one whose seq goes on from the old is checked against the
      // replay buffer, see #onLiveMessage).
      this.#disconnections++;
      for (const replica of this.#replicas.values()) this.#doubt(replica);
    }
    this.#log(
      connection === "connected" ? "info" : "warn",
      { connection },
      connection === "connected"
        ? "connected to the engine's KV-event stream"
        : "lost the engine's KV-event stream; reconnecting",
    );
    this.#keepAlive();
  }

  /** After a lost connection: the replica is not vouched for, and its next batch is checked. */
  #doubt(replica: ReplicaProgress): void {
    replica.vouched = false;
    replica.unconfirmed = replica.lastSeq !== undefined && this.source.replayEndpoint !== undefined;
  }

  #warnMalformed(kind: "framing" | "payload", error: string, seq?: bigint): void {
    const suppressed = this.#warnings.admit();
    if (suppressed === undefined) return;
    this.#log(
      "warn",
      { kind, error, ...(seq === undefined ? {} : { seq: String(seq) }), suppressed },
      "malformed KV-event message skipped",
    );
  }

  #log(level: "info" | "warn" | "error", fields: Record<string, unknown>, message: string): void {
    this.#logger?.[level](
      { source: this.source.name, endpoint: this.source.endpoint, ...fields },
      message,
    );
  }
}
