import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { CacheIndex } from "../core/cache-index.js";
import {
  DROP_REASONS,
  type DropCounts,
  type DropReason,
  type EvictionCounts,
  type EvictionReason,
  type ModelId,
  type PublishOutcome,
  type ReportOutcome,
  type SweepOutcome,
} from "../core/types.js";
import { LatencyHistogram, type LatencySeries } from "./latency-histogram.js";
import { LOOKUP_REASON_CODES, type LookupReasonCode } from "./lookup-reason-code.js";
import {
  createModelLabelGuard,
  type ModelLabelGuard,
  OTHER_MODEL_LABEL,
} from "./model-label-guard.js";

/**
 * Upper bounds, in seconds, of the lookup latency histogram: 1 µs to 100 ms in 1-2.5-5 steps, since
 * an in-memory lookup takes microseconds and anything past 100 ms is an outage, not a latency.
 */
export const LOOKUP_LATENCY_BUCKETS: readonly number[] = [
  1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
  0.1,
];

/** Options for {@link createIndexMetrics}. */
export interface IndexMetricsOptions {
  /** The index whose sizes the gauges report. Read at scrape time: one `size()` call per gauge. */
  readonly index: Pick<CacheIndex, "size">;
  /**
   * Where the metrics are registered. Should not be prom-client's global registry: everything this
   * sidecar exposes lives on a registry the composition root owns.
   * @default a new `Registry`
   */
  readonly registry?: Registry;
  /**
   * How many distinct `model` label values are kept; later models are reported as
   * `model="_other"` (see {@link createModelLabelGuard}). Must be a non-negative integer.
   * @default 200
   */
  readonly maxModelLabels?: number;
  /**
   * Whether to register prom-client's default process metrics (CPU, memory, event loop lag, GC) on
   * the registry too. Turn off when the registry already has them.
   * @default true
   */
  readonly collectDefaultMetrics?: boolean;
  /**
   * Upper bounds of the lookup latency histogram, in seconds.
   * @default LOOKUP_LATENCY_BUCKETS
   */
  readonly lookupLatencyBuckets?: readonly number[];
}

/**
 * The index's Prometheus metrics, all named `inferencecache_*`:
 *
 * - `inferencecache_index_entries{model}` gauge: holder entries per model, read from the index at
 *   scrape time; a model once reported whose entries drained away reads 0.
 * - `inferencecache_index_replicas` gauge: replicas the index knows, read at scrape time.
 * - `inferencecache_lookup_route_calls_total{model,reason_code,hint_used}` counter.
 * - `inferencecache_lookup_route_latency_seconds{model}` histogram.
 * - `inferencecache_ingested_prefixes_total{source}` counter: prefixes accepted, `source` being
 *   `report` or `event`.
 * - `inferencecache_ingest_dropped_total{reason}` counter: prefixes and events dropped, `reason` being
 *   `hash_scheme_missing`, `prefix_hash_empty`, `prefix_hash_too_long`, `unknown_event_type` or
 *   `unknown_block`.
 * - `inferencecache_ingest_events_total{outcome}` counter: events `applied` or `ignored`.
 * - `inferencecache_evictions_total{reason}` counter: holder entries removed, `reason` being `ttl`,
 *   `cap`, `event` or `cleared`.
 * - `inferencecache_entries_renewed_total` counter: entries of replicas kept alive by a live event
 *   stream, confirmed again by a sweep when they reached the TTL.
 *
 * `model` values come from requests, so the label is bounded: only models that writes created
 * entries for get a label of their own, the first `maxModelLabels` of them; lookups for any other
 * model, and models past the limit, share `model="_other"`. Series with a fixed label set start at 0.
 */
export interface IndexMetrics {
  /** The registry every metric is on: serve `registry.metrics()` with `registry.contentType`. */
  readonly registry: Registry;

  /**
   * Counts one route lookup and observes its latency. The instrumented index calls this for every
   * lookup; the service calls it for lookups it answers itself (`NOT_READY`) with no latency, since
   * they never reach the index. Cost: O(1): a map look-up, a plain increment and, with `seconds`, one
   * histogram observation.
   */
  recordLookup(
    model: ModelId,
    reasonCode: LookupReasonCode,
    hintUsed: boolean,
    seconds?: number,
  ): void;

  /**
   * Counts a report's accepted and dropped prefixes and the entries it evicted; a report that
   * added entries admits its model to a label of its own.
   */
  recordReport(model: ModelId, outcome: ReportOutcome): void;

  /** Counts a batch's events, prefixes and evictions, and admits its model like a report. */
  recordPublish(model: ModelId, outcome: PublishOutcome): void;

  /** Counts the entries a sweep step expired, as `ttl` evictions, and those it renewed. */
  recordSweep(outcome: SweepOutcome): void;
}

/**
 * Creates the index's metrics on their own registry (see {@link IndexMetrics} for the names). Throws
 * a `RangeError` for an invalid `maxModelLabels`, and prom-client's error when the registry already
 * holds a metric of the same name.
 */
export function createIndexMetrics(options: IndexMetricsOptions): IndexMetrics {
  return new PrometheusIndexMetrics(options);
}

const EVICTION_REASONS: readonly EvictionReason[] = ["ttl", "cap", "event", "cleared"];

/** Where a reason code's calls are counted in {@link LookupSeries}: `2 * index + (hintUsed ? 1 : 0)`. */
const callSlotBase: Readonly<Record<LookupReasonCode, number>> = {
  PREFIX_MATCH: 0,
  NO_HINT: 2,
  HASH_SCHEME_MISSING: 4,
  INVALID_REQUEST: 6,
  NOT_READY: 8,
};

/** One model label's lookup series, resolved once so that recording a lookup builds no labels. */
interface LookupSeries {
  readonly latency: LatencySeries;
  /**
   * Calls counted since the last scrape, per slot (see `callSlotBase`). A prom-client `inc()` hashes
   * and validates its labels on every call (about 0.3 µs, as much as the clock reads and the
   * histogram together), so the hot path adds to a plain number and the counter's `collect()`
   * flushes it into prom-client: a scrape never sees a stale count.
   */
  readonly pendingCalls: Float64Array;
  /** The counter child of each slot. */
  readonly calls: readonly Counter.Internal[];
}

class PrometheusIndexMetrics implements IndexMetrics {
  readonly registry: Registry;
  readonly #modelLabels: ModelLabelGuard;
  readonly #lookupCalls: Counter<"model" | "reason_code" | "hint_used">;
  readonly #lookupLatency: LatencyHistogram;
  /** Series of admitted models only, so at most `maxModelLabels` entries. */
  readonly #lookupSeriesByModel = new Map<ModelId, LookupSeries>();
  #otherLookupSeries: LookupSeries | undefined;
  /** Every series created (admitted models and `_other`), for the flush at scrape time. */
  readonly #lookupSeries: LookupSeries[] = [];
  readonly #ingestedFromReports: Counter.Internal;
  readonly #ingestedFromEvents: Counter.Internal;
  readonly #eventsApplied: Counter.Internal;
  readonly #eventsIgnored: Counter.Internal;
  readonly #dropped: Readonly<Record<DropReason, Counter.Internal>>;
  readonly #evictions: Readonly<Record<EvictionReason, Counter.Internal>>;
  readonly #renewed: Counter;

  constructor(options: IndexMetricsOptions) {
    const index = options.index;
    const registry = options.registry ?? new Registry();
    const registers = [registry];
    const modelLabels = createModelLabelGuard(
      options.maxModelLabels === undefined ? {} : { maxModelLabels: options.maxModelLabels },
    );
    this.registry = registry;
    this.#modelLabels = modelLabels;

    // Every label value the entries gauge has reported, so that a model whose entries drained away
    // reads 0 instead of vanishing (or, worse, keeping its last value). Bounded by the label guard.
    const entriesLabelsSeen = new Set<string>();
    new Gauge({
      name: "inferencecache_index_entries",
      help: "Holder entries ((prefix block, replica) pairs) in the index, per model.",
      labelNames: ["model"] as const,
      registers,
      collect() {
        const entriesByLabel = new Map<string, number>();
        for (const [model, entries] of index.size().entriesByModel) {
          // A model holding entries was written by an adapter: admitting it here is safe.
          const label = modelLabels.admit(model);
          entriesByLabel.set(label, (entriesByLabel.get(label) ?? 0) + entries);
          entriesLabelsSeen.add(label);
        }
        for (const label of entriesLabelsSeen) {
          this.set({ model: label }, entriesByLabel.get(label) ?? 0);
        }
      },
    });
    new Gauge({
      name: "inferencecache_index_replicas",
      help: "Replicas the index knows of.",
      registers,
      collect() {
        this.set(index.size().replicas);
      },
    });

    const lookupSeries = this.#lookupSeries;
    this.#lookupCalls = new Counter({
      name: "inferencecache_lookup_route_calls_total",
      help: "Route lookups answered, by model, reason code and whether any replica was hinted.",
      labelNames: ["model", "reason_code", "hint_used"] as const,
      registers,
      collect() {
        for (const series of lookupSeries) {
          const pending = series.pendingCalls;
          for (let slot = 0; slot < pending.length; slot++) {
            const count = pending[slot] ?? 0;
            if (count === 0) continue;
            series.calls[slot]?.inc(count);
            pending[slot] = 0;
          }
        }
      },
    });
    // Recorded on every lookup: a histogram of our own, as prom-client's hashes its labels on each
    // observation (see LatencyHistogram).
    this.#lookupLatency = new LatencyHistogram({
      name: "inferencecache_lookup_route_latency_seconds",
      help: "Time spent answering a route lookup in the index, in seconds.",
      labelName: "model",
      buckets: options.lookupLatencyBuckets ?? LOOKUP_LATENCY_BUCKETS,
      registers,
    });

    const ingested = new Counter({
      name: "inferencecache_ingested_prefixes_total",
      help: "Prefix blocks added or refreshed, by source (report or event).",
      labelNames: ["source"] as const,
      registers,
    });
    this.#ingestedFromReports = zeroed(ingested.labels("report"));
    this.#ingestedFromEvents = zeroed(ingested.labels("event"));

    const events = new Counter({
      name: "inferencecache_ingest_events_total",
      help: "Cache events received, by outcome (applied or ignored).",
      labelNames: ["outcome"] as const,
      registers,
    });
    this.#eventsApplied = zeroed(events.labels("applied"));
    this.#eventsIgnored = zeroed(events.labels("ignored"));

    const dropped = new Counter({
      name: "inferencecache_ingest_dropped_total",
      help: "Prefix blocks and events dropped on ingestion, by reason.",
      labelNames: ["reason"] as const,
      registers,
    });
    this.#dropped = {
      "hash-scheme-missing": zeroed(dropped.labels("hash_scheme_missing")),
      "prefix-hash-empty": zeroed(dropped.labels("prefix_hash_empty")),
      "prefix-hash-too-long": zeroed(dropped.labels("prefix_hash_too_long")),
      "unknown-event-type": zeroed(dropped.labels("unknown_event_type")),
      "unknown-block": zeroed(dropped.labels("unknown_block")),
      "too-many-hash-schemes": zeroed(dropped.labels("too_many_hash_schemes")),
    };

    const evictions = new Counter({
      name: "inferencecache_evictions_total",
      help: "Holder entries removed from the index, by reason (ttl, cap, event, cleared).",
      labelNames: ["reason"] as const,
      registers,
    });
    this.#evictions = {
      ttl: zeroed(evictions.labels("ttl")),
      cap: zeroed(evictions.labels("cap")),
      event: zeroed(evictions.labels("event")),
      cleared: zeroed(evictions.labels("cleared")),
    };

    this.#renewed = new Counter({
      name: "inferencecache_entries_renewed_total",
      help: "Entries of replicas kept alive by a live event stream, confirmed again on reaching the TTL.",
      registers,
    });

    if (options.collectDefaultMetrics ?? true) {
      collectDefaultMetrics({ register: registry });
    }
  }

  recordLookup(
    model: ModelId,
    reasonCode: LookupReasonCode,
    hintUsed: boolean,
    seconds?: number,
  ): void {
    const series = this.#lookupSeriesByModel.get(model) ?? this.#lookupSeriesFor(model);
    if (seconds !== undefined) series.latency.observe(seconds);
    const slot = callSlotBase[reasonCode] + (hintUsed ? 1 : 0);
    series.pendingCalls[slot] = (series.pendingCalls[slot] ?? 0) + 1;
  }

  recordReport(model: ModelId, outcome: ReportOutcome): void {
    if (outcome.accepted > 0) {
      this.#ingestedFromReports.inc(outcome.accepted);
      this.#modelLabels.admit(model);
    }
    this.#recordDropped(outcome.dropped);
    this.#recordEvicted(outcome.evicted);
  }

  recordPublish(model: ModelId, outcome: PublishOutcome): void {
    if (outcome.addedPrefixes > 0) {
      this.#ingestedFromEvents.inc(outcome.addedPrefixes);
      this.#modelLabels.admit(model);
    }
    if (outcome.applied > 0) this.#eventsApplied.inc(outcome.applied);
    if (outcome.ignored > 0) this.#eventsIgnored.inc(outcome.ignored);
    this.#recordDropped(outcome.dropped);
    this.#recordEvicted(outcome.evicted);
  }

  recordSweep(outcome: SweepOutcome): void {
    if (outcome.expiredEntries > 0) this.#evictions.ttl.inc(outcome.expiredEntries);
    if (outcome.renewedEntries > 0) this.#renewed.inc(outcome.renewedEntries);
  }

  #recordDropped(dropped: DropCounts): void {
    for (const reason of DROP_REASONS) {
      const count = dropped[reason];
      if (count > 0) this.#dropped[reason].inc(count);
    }
  }

  #recordEvicted(evicted: EvictionCounts): void {
    for (const reason of EVICTION_REASONS) {
      const count = evicted[reason];
      if (count > 0) this.#evictions[reason].inc(count);
    }
  }

  /**
   * The series a model without cached series is recorded under: its own once a write admitted it
   * (then cached), `_other` until then (not cached, so a later admission takes effect).
   */
  #lookupSeriesFor(model: ModelId): LookupSeries {
    const label = this.#modelLabels.labelFor(model);
    if (label === OTHER_MODEL_LABEL) {
      this.#otherLookupSeries ??= this.#createLookupSeries(OTHER_MODEL_LABEL);
      return this.#otherLookupSeries;
    }
    const series = this.#createLookupSeries(label);
    this.#lookupSeriesByModel.set(model, series);
    return series;
  }

  #createLookupSeries(label: string): LookupSeries {
    const calls: Counter.Internal[] = [];
    for (const reasonCode of LOOKUP_REASON_CODES) {
      const slot = callSlotBase[reasonCode];
      calls[slot] = this.#lookupCalls.labels(label, reasonCode, "false");
      calls[slot + 1] = this.#lookupCalls.labels(label, reasonCode, "true");
    }
    const series: LookupSeries = {
      latency: this.#lookupLatency.labels(label),
      pendingCalls: new Float64Array(calls.length),
      calls,
    };
    this.#lookupSeries.push(series);
    return series;
  }
}

/** Makes a fixed series visible at 0 before its first event, so `rate()` sees its first increase. */
function zeroed(child: Counter.Internal): Counter.Internal {
  child.inc(0);
  return child;
}
