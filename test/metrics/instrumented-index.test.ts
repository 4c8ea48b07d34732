import { describe, expect, it } from "vitest";
import { IndexError } from "../../src/core/index-error.js";
import type { CacheReport, EventBatch } from "../../src/core/types.js";
import { createIndexMetrics } from "../../src/metrics/index-metrics.js";
import { createInstrumentedIndex } from "../../src/metrics/instrumented-index.js";
import { ManualClock } from "../support/manual-clock.js";
import {
  FakeCacheIndex,
  publishOutcome,
  reportOutcome,
  routeAnswer,
  routeQuery,
} from "./fake-cache-index.js";
import { readLookupCalls, readSample } from "./read-metric.js";

function setup() {
  const next = new FakeCacheIndex();
  const clock = new ManualClock();
  next.clock = clock;
  const metrics = createIndexMetrics({ index: next, collectDefaultMetrics: false });
  const index = createInstrumentedIndex(next, metrics, { clock });
  return { next, metrics, registry: metrics.registry, index };
}

/** Models get a label of their own once a write added entries for them. */
function admit(metrics: ReturnType<typeof setup>["metrics"], ...models: string[]) {
  for (const model of models) metrics.recordReport(model, reportOutcome({ accepted: 1 }));
}

const report: CacheReport = {
  tenant: "tenant-a",
  model: "llama-3-8b",
  replicaId: "replica-0",
  hashScheme: "sha256-16",
  prefixes: [{ prefixHash: new Uint8Array([1]), tokenCount: 16 }],
};

const batch: EventBatch = {
  tenant: "tenant-a",
  model: "llama-3-8b",
  replicaId: "replica-0",
  hashScheme: "sha256-16",
  events: [{ type: "all-cleared" }],
};

function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

describe("createInstrumentedIndex()", () => {
  it("passes every call to the index and returns its results unchanged", () => {
    const { next, index } = setup();
    const query = routeQuery();
    const scope = { tenant: "tenant-a", model: "llama-3-8b" };

    expect(index.report(report)).toBe(next.reportOutcome);
    expect(index.publish(batch)).toBe(next.publishOutcome);
    expect(index.lookup(query)).toBe(next.routeAnswer);
    expect(index.lookup(query, true)).toBe(next.routeAnswer);
    expect(index.describe(scope)).toBe(next.scopeState);
    expect(index.sweep(42)).toBe(next.sweepOutcome);
    expect(index.size()).toBe(next.indexSize);
    expect(next.calls).toEqual([
      { method: "report", argument: report },
      { method: "publish", argument: batch },
      { method: "lookup", argument: query },
      { method: "lookup", argument: query, reuse: true },
      { method: "describe", argument: scope },
      { method: "sweep", argument: 42 },
      { method: "size", argument: undefined },
    ]);
    expect(next.calls[0]?.argument).toBe(report);
  });

  it("counts a lookup that failed inside the index as NO_HINT, the answer the service gives", async () => {
    const { next, index, metrics, registry } = setup();
    admit(metrics, "llama-3-8b");
    const failure = new Error("a bug in the index");
    next.failure = failure;
    expect(thrownBy(() => index.lookup(routeQuery("llama-3-8b")))).toBe(failure);
    next.failure = undefined;
    expect(await readLookupCalls(registry, "llama-3-8b", "NO_HINT", "false")).toBe(1);
  });

  it("lets an error from the index propagate unchanged and counts nothing for the call", async () => {
    const { next, index, registry } = setup();
    const failure = new IndexError("invalid-argument", "tenant", "tenant is required");
    next.failure = failure;
    next.reportOutcome = reportOutcome({ accepted: 5 });

    expect(thrownBy(() => index.report(report))).toBe(failure);
    expect(thrownBy(() => index.lookup(routeQuery()))).toBe(failure);
    expect(thrownBy(() => index.sweep(10))).toBe(failure);

    next.failure = undefined; // a scrape reads the index's size
    expect(
      await readSample(registry, "inferencecache_ingested_prefixes_total", { source: "report" }),
    ).toBe(0);
    expect(
      await readSample(registry, "inferencecache_lookup_route_latency_seconds_count", {
        model: "llama-3-8b",
      }),
    ).toBeUndefined();
  });

  it("counts lookups by model, reason code and whether a replica was hinted", async () => {
    const { next, index, metrics, registry } = setup();
    admit(metrics, "llama-3-8b", "mistral-7b");
    next.routeAnswer = routeAnswer("prefix-match", 2);
    index.lookup(routeQuery("llama-3-8b"));
    index.lookup(routeQuery("llama-3-8b"));
    next.routeAnswer = routeAnswer("no-hint");
    index.lookup(routeQuery("llama-3-8b"));
    next.routeAnswer = routeAnswer("hash-scheme-missing");
    index.lookup(routeQuery("mistral-7b"));
    next.routeAnswer = routeAnswer("invalid-request");
    index.lookup(routeQuery("mistral-7b"));

    const calls = (model: string, reasonCode: string, hintUsed: "true" | "false") =>
      readLookupCalls(registry, model, reasonCode, hintUsed);
    expect(await calls("llama-3-8b", "PREFIX_MATCH", "true")).toBe(2);
    expect(await calls("llama-3-8b", "NO_HINT", "false")).toBe(1);
    expect(await calls("mistral-7b", "HASH_SCHEME_MISSING", "false")).toBe(1);
    expect(await calls("mistral-7b", "INVALID_REQUEST", "false")).toBe(1);
    expect(await calls("llama-3-8b", "PREFIX_MATCH", "false")).toBeUndefined();
  });

  it("observes each lookup's latency in seconds", async () => {
    const { next, index, metrics, registry } = setup();
    admit(metrics, "llama-3-8b");
    next.lookupMs = 0.003; // 3 µs
    index.lookup(routeQuery());
    next.lookupMs = 2; // 2 ms
    index.lookup(routeQuery());

    const bucket = (le: number) =>
      readSample(registry, "inferencecache_lookup_route_latency_seconds_bucket", {
        model: "llama-3-8b",
        le,
      });
    expect(await bucket(2.5e-6)).toBe(0);
    expect(await bucket(5e-6)).toBe(1);
    expect(await bucket(1e-3)).toBe(1);
    expect(await bucket(2.5e-3)).toBe(2);
    const sum = await readSample(registry, "inferencecache_lookup_route_latency_seconds_sum", {
      model: "llama-3-8b",
    });
    expect(sum).toBeCloseTo(0.002003, 9);
  });

  it("counts prefixes accepted from reports and from events separately", async () => {
    const { next, index, registry } = setup();
    next.reportOutcome = reportOutcome({ accepted: 7 });
    next.publishOutcome = publishOutcome({ applied: 1, addedPrefixes: 3 });
    index.report(report);
    index.report(report);
    index.publish(batch);

    const ingested = (source: string) =>
      readSample(registry, "inferencecache_ingested_prefixes_total", { source });
    expect(await ingested("report")).toBe(14);
    expect(await ingested("event")).toBe(3);
  });

  it("counts events applied and ignored", async () => {
    const { next, index, registry } = setup();
    next.publishOutcome = publishOutcome({ applied: 4, ignored: 1 });
    index.publish(batch);

    const events = (outcome: string) =>
      readSample(registry, "inferencecache_ingest_events_total", { outcome });
    expect(await events("applied")).toBe(4);
    expect(await events("ignored")).toBe(1);
  });

  it("counts dropped prefixes and events by reason, from reports and batches alike", async () => {
    const { next, index, registry } = setup();
    next.reportOutcome = reportOutcome({
      dropped: { "hash-scheme-missing": 3, "prefix-hash-empty": 1 },
    });
    next.publishOutcome = publishOutcome({
      dropped: { "prefix-hash-too-long": 2, "unknown-event-type": 5, "prefix-hash-empty": 1 },
    });
    index.report(report);
    index.publish(batch);

    const dropped = (reason: string) =>
      readSample(registry, "inferencecache_ingest_dropped_total", { reason });
    expect(await dropped("hash_scheme_missing")).toBe(3);
    expect(await dropped("prefix_hash_empty")).toBe(2);
    expect(await dropped("prefix_hash_too_long")).toBe(2);
    expect(await dropped("unknown_event_type")).toBe(5);
  });

  it("counts evictions by reason: cap, event and cleared from writes, ttl from sweeps", async () => {
    const { next, index, registry } = setup();
    next.reportOutcome = reportOutcome({ evicted: { cap: 2 } });
    next.publishOutcome = publishOutcome({ evicted: { cap: 1, event: 4, cleared: 9 } });
    next.sweepOutcome = { expiredEntries: 6, renewedEntries: 0, removedReplicas: 1, done: false };
    index.report(report);
    index.publish(batch);
    index.sweep(100);
    index.sweep(100);

    const evictions = (reason: string) =>
      readSample(registry, "inferencecache_evictions_total", { reason });
    expect(await evictions("cap")).toBe(3);
    expect(await evictions("event")).toBe(4);
    expect(await evictions("cleared")).toBe(9);
    expect(await evictions("ttl")).toBe(12);
  });
});
