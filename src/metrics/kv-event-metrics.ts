import { Counter, Gauge, type Registry } from "prom-client";
import type { KvEventReplicaState, KvEventStreamState } from "../kv-stream/kv-event-stream.js";

/** Options for {@link registerKvEventMetrics}. */
export interface KvEventMetricsOptions {
  /** Where the metrics are registered: the sidecar's own registry. */
  readonly registry: Registry;
  /** The engine streams' states, read once per metric at scrape time. */
  readonly states: () => readonly KvEventStreamState[];
  /**
   * How often the index has refused a source's events so far (see the sink's `onRejected`), by
   * the source's name.
   * @default () => 0
   */
  readonly rejections?: ((source: string) => number) | undefined;
}

/**
 * Registers the engines' KV-event stream metrics, all named `inferencecache_kv_events_*` and read
 * from the streams' states at scrape time, so receiving a batch costs nothing here. `source` is
 * the source's name in the sources file; `replica` the replica id a data-parallel rank's batches are
 * indexed under. A source that leaves the configuration loses its series; one whose configuration
 * changed starts again from 0 (a counter reset, which `rate()` handles).
 *
 * - `inferencecache_kv_events_connected{source}` gauge: 1 while connected to the engine, else 0.
 * - `inferencecache_kv_events_batches_total{source,replica}` counter: batches applied.
 * - `inferencecache_kv_events_events_total{source,replica,type}` counter: events in them, `type`
 *   being `block_stored`, `block_removed`, `all_blocks_cleared` or `unknown` (skipped).
 * - `inferencecache_kv_events_decode_errors_total{source,stage}` counter: messages skipped, `stage`
 *   being `framing` (not [topic, seq, payload]) or `payload` (msgpack the decoder rejected).
 * - `inferencecache_kv_events_gaps_total{source,replica}` counter: times batches went missing.
 * - `inferencecache_kv_events_replays_total{source,replica,outcome}` counter: replays `recovered`
 *   or `failed`.
 * - `inferencecache_kv_events_restarts_total{source,replica}` counter: engine restarts detected.
 * - `inferencecache_kv_events_clears_total{source,replica,reason}` counter: replicas cleared,
 *   `reason` being `gap` or `restart` (removals from the configuration are logged, not counted:
 *   their series go with them).
 * - `inferencecache_kv_events_rejected_total{source}` counter: times the index refused a batch's
 *   events for one model (a LoRA name it does not take, an adapter past the sink's cap); the first
 *   of every 10 s is logged.
 * - `inferencecache_kv_events_seconds_since_last_batch{source,replica}` gauge.
 *
 * Throws prom-client's error when the registry already holds a metric of the same name.
 */
export function registerKvEventMetrics(options: KvEventMetricsOptions): void {
  const { registry, states } = options;
  const rejections = options.rejections ?? (() => 0);
  const registers = [registry];

  new Gauge({
    name: "inferencecache_kv_events_connected",
    help: "1 while the sidecar is connected to the engine's KV-event stream, else 0.",
    labelNames: ["source"] as const,
    registers,
    collect() {
      this.reset();
      for (const stream of states()) {
        this.set({ source: stream.source.name }, stream.connection === "connected" ? 1 : 0);
      }
    },
  });
  new Counter({
    name: "inferencecache_kv_events_decode_errors_total",
    help: "KV-event messages skipped: bad framing, or a payload that could not be decoded.",
    labelNames: ["source", "stage"] as const,
    registers,
    collect() {
      this.reset();
      for (const stream of states()) {
        this.inc({ source: stream.source.name, stage: "framing" }, stream.framingErrors);
        this.inc({ source: stream.source.name, stage: "payload" }, stream.decodeErrors);
      }
    },
  });

  replicaCounter(
    registry,
    "inferencecache_kv_events_batches_total",
    "KV-event batches applied, per engine replica.",
    [],
    (replica, inc) => inc({}, replica.batches),
    states,
  );
  replicaCounter(
    registry,
    "inferencecache_kv_events_events_total",
    "KV events in the batches applied, by type.",
    ["type"],
    (replica, inc) => {
      inc({ type: "block_stored" }, replica.events.BlockStored);
      inc({ type: "block_removed" }, replica.events.BlockRemoved);
      inc({ type: "all_blocks_cleared" }, replica.events.AllBlocksCleared);
      inc({ type: "unknown" }, replica.events.unknown);
    },
    states,
  );
  replicaCounter(
    registry,
    "inferencecache_kv_events_gaps_total",
    "Times KV-event batches were found missing (seq jumped forward).",
    [],
    (replica, inc) => inc({}, replica.gaps),
    states,
  );
  replicaCounter(
    registry,
    "inferencecache_kv_events_replays_total",
    "Replays of missing KV-event batches from the engine, by outcome.",
    ["outcome"],
    (replica, inc) => {
      inc({ outcome: "recovered" }, replica.replays);
      inc({ outcome: "failed" }, replica.replayFailures);
    },
    states,
  );
  replicaCounter(
    registry,
    "inferencecache_kv_events_restarts_total",
    "Engine restarts detected on the KV-event stream.",
    [],
    (replica, inc) => inc({}, replica.restarts),
    states,
  );
  replicaCounter(
    registry,
    "inferencecache_kv_events_clears_total",
    "Times a replica's entries were cleared by its KV-event stream, by reason.",
    ["reason"],
    (replica, inc) => {
      inc({ reason: "gap" }, replica.clears.gap);
      inc({ reason: "restart" }, replica.clears.restart);
    },
    states,
  );

  new Counter({
    name: "inferencecache_kv_events_rejected_total",
    help: "Times the index refused a KV-event batch's events for one model (see the log).",
    labelNames: ["source"] as const,
    registers,
    collect() {
      this.reset();
      for (const stream of states()) {
        this.inc({ source: stream.source.name }, rejections(stream.source.name));
      }
    },
  });

  new Gauge({
    name: "inferencecache_kv_events_seconds_since_last_batch",
    help: "Seconds since the last KV-event batch was applied for the replica.",
    labelNames: ["source", "replica"] as const,
    registers,
    collect() {
      this.reset();
      for (const stream of states()) {
        for (const replica of stream.replicas) {
          if (replica.lastBatchAgeSeconds === undefined) continue;
          this.set(
            { source: stream.source.name, replica: replica.replicaId },
            replica.lastBatchAgeSeconds,
          );
        }
      }
    },
  });
}

type ReplicaLabels = Record<string, string>;

/** A counter per (source, replica) and `extraLabels`, set from the states at every scrape. */
function replicaCounter(
  registry: Registry,
  name: string,
  help: string,
  extraLabels: readonly string[],
  count: (
    replica: KvEventReplicaState,
    inc: (labels: ReplicaLabels, value: number) => void,
  ) => void,
  states: () => readonly KvEventStreamState[],
): void {
  new Counter({
    name,
    help,
    labelNames: ["source", "replica", ...extraLabels],
    registers: [registry],
    collect() {
      // The states hold the totals since each stream started: the series are rebuilt from them.
      this.reset();
      for (const stream of states()) {
        for (const replica of stream.replicas) {
          const base = { source: stream.source.name, replica: replica.replicaId };
          count(replica, (labels, value) => this.inc({ ...base, ...labels }, value));
        }
      }
    },
  });
}
