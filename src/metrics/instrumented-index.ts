import type { CacheIndex } from "../core/cache-index.js";
import type { Clock } from "../core/clock.js";
import type {
  CacheReport,
  EventBatch,
  IndexSize,
  PublishOutcome,
  ReplicaRef,
  ReportOutcome,
  RouteAnswer,
  RouteQuery,
  ScopeQuery,
  ScopeState,
  SweepOutcome,
} from "../core/types.js";
import type { IndexMetrics } from "./index-metrics.js";
import { lookupReasonCode } from "./lookup-reason-code.js";

/** Options for {@link createInstrumentedIndex}. */
export interface InstrumentedIndexOptions {
  /**
   * The monotonic clock, in milliseconds, lookups are timed with.
   * @default `performance` (its `now()`)
   */
  readonly clock?: Clock;
}

/**
 * Wraps an index so that every call is counted in `metrics`, leaving the index itself free of them
 * (llm-d's `instrumentedIndex{ next Index }`). Every method delegates to `next` and returns its
 * result unchanged; an error thrown by `next` propagates unchanged and records nothing, except
 * from `lookup`, which the service then answers NO_HINT and which is counted so. Records:
 *
 * - `lookup`: its latency and its call, by model, reason code and whether any replica was hinted;
 * - `report` and `publish`: accepted and dropped prefixes, applied and ignored events, evictions;
 * - `sweep`: expired entries, as `ttl` evictions.
 *
 * `describe` and `size` are passed through uncounted.
 */
export function createInstrumentedIndex(
  next: CacheIndex,
  metrics: IndexMetrics,
  options: InstrumentedIndexOptions = {},
): CacheIndex {
  return new InstrumentedIndex(next, metrics, options.clock ?? performance);
}

class InstrumentedIndex implements CacheIndex {
  readonly #next: CacheIndex;
  readonly #metrics: IndexMetrics;
  readonly #clock: Clock;

  constructor(next: CacheIndex, metrics: IndexMetrics, clock: Clock) {
    this.#next = next;
    this.#metrics = metrics;
    this.#clock = clock;
  }

  report(report: CacheReport): ReportOutcome {
    const outcome = this.#next.report(report);
    this.#metrics.recordReport(report.model, outcome);
    return outcome;
  }

  publish(batch: EventBatch): PublishOutcome {
    const outcome = this.#next.publish(batch);
    this.#metrics.recordPublish(batch.model, outcome);
    return outcome;
  }

  lookup(query: RouteQuery, reuse?: boolean): RouteAnswer {
    // The hot path: two clock reads and O(1) recording, nothing allocated here.
    const startedAt = this.#clock.now();
    let answer: RouteAnswer;
    try {
      answer = this.#next.lookup(query, reuse);
    } catch (error) {
      // The service answers a lookup that failed inside the index NO_HINT (it fails open), so it
      // is counted as one.
      const seconds = (this.#clock.now() - startedAt) / 1000;
      this.#metrics.recordLookup(query.model, "NO_HINT", false, seconds);
      throw error;
    }
    const seconds = (this.#clock.now() - startedAt) / 1000;
    this.#metrics.recordLookup(
      query.model,
      lookupReasonCode(answer.reason),
      answer.hints.length > 0,
      seconds,
    );
    return answer;
  }

  describe(query: ScopeQuery): ScopeState {
    return this.#next.describe(query);
  }

  keepAlive(replica: ReplicaRef, until: number): void {
    this.#next.keepAlive(replica, until);
  }

  sweep(budget: number): SweepOutcome {
    const outcome = this.#next.sweep(budget);
    this.#metrics.recordSweep(outcome);
    return outcome;
  }

  size(): IndexSize {
    return this.#next.size();
  }
}
