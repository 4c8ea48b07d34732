import { register as globalRegistry, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createIndexMetrics, LOOKUP_LATENCY_BUCKETS } from "../../src/metrics/index-metrics.js";
import { FakeCacheIndex, publishOutcome, reportOutcome } from "./fake-cache-index.js";
import { readLookupCalls, readSample } from "./read-metric.js";

function setup(options: { maxModelLabels?: number } = {}) {
  const index = new FakeCacheIndex();
  const metrics = createIndexMetrics({ index, collectDefaultMetrics: false, ...options });
  return { index, metrics, registry: metrics.registry };
}

/** What an adapter's report that added entries for `model` does to the label guard. */
function admitByReport(metrics: ReturnType<typeof setup>["metrics"], ...models: string[]) {
  for (const model of models) metrics.recordReport(model, reportOutcome({ accepted: 1 }));
}

function sizeOf(entriesByModel: Record<string, number>, replicas = 1) {
  const models = new Map(Object.entries(entriesByModel));
  let entries = 0;
  for (const count of models.values()) entries += count;
  return { entries, entriesByModel: models, replicas };
}

describe("createIndexMetrics()", () => {
  it("reports holder entries per model and the replica count as they are at scrape time", async () => {
    const { index, registry } = setup();
    index.indexSize = sizeOf({ "llama-3-8b": 120, "mistral-7b": 30 }, 4);

    expect(
      await readSample(registry, "inferencecache_index_entries", { model: "llama-3-8b" }),
    ).toBe(120);
    expect(
      await readSample(registry, "inferencecache_index_entries", { model: "mistral-7b" }),
    ).toBe(30);
    expect(await readSample(registry, "inferencecache_index_replicas")).toBe(4);

    index.indexSize = sizeOf({ "llama-3-8b": 80 }, 2);
    expect(
      await readSample(registry, "inferencecache_index_entries", { model: "llama-3-8b" }),
    ).toBe(80);
    expect(await readSample(registry, "inferencecache_index_replicas")).toBe(2);
  });

  it("reads 0 for a model whose entries drained away, not its last value", async () => {
    const { index, registry } = setup();
    index.indexSize = sizeOf({ "llama-3-8b": 120, "mistral-7b": 30 });
    await registry.metrics();

    index.indexSize = sizeOf({ "llama-3-8b": 120 });
    const text = await registry.getSingleMetricAsString("inferencecache_index_entries");
    expect(text).toMatch(/^inferencecache_index_entries\{model="mistral-7b"\} 0$/m);
    expect(text).toMatch(/^inferencecache_index_entries\{model="llama-3-8b"\} 120$/m);
  });

  it("counts lookups the service answers itself, such as NOT_READY, without a latency", async () => {
    const { metrics, registry } = setup();
    admitByReport(metrics, "llama-3-8b");
    metrics.recordLookup("llama-3-8b", "NOT_READY", false);

    expect(
      await readSample(registry, "inferencecache_lookup_route_calls_total", {
        model: "llama-3-8b",
        reason_code: "NOT_READY",
        hint_used: "false",
      }),
    ).toBe(1);
    const latencySamples = await readSample(
      registry,
      "inferencecache_lookup_route_latency_seconds_count",
      { model: "llama-3-8b" },
    );
    expect(latencySamples ?? 0).toBe(0);
  });

  it("keeps counting lookups across scrapes without counting any twice", async () => {
    const { metrics, registry } = setup();
    admitByReport(metrics, "llama-3-8b");
    const prefixMatches = () =>
      readSample(registry, "inferencecache_lookup_route_calls_total", {
        model: "llama-3-8b",
        reason_code: "PREFIX_MATCH",
        hint_used: "true",
      });
    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.00001);
    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.00001);
    expect(await prefixMatches()).toBe(2);
    expect(await prefixMatches()).toBe(2);

    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.00001);
    expect(await registry.metrics()).toMatch(
      /^inferencecache_lookup_route_calls_total\{model="llama-3-8b",reason_code="PREFIX_MATCH",hint_used="true"\} 3$/m,
    );
  });

  it("gives the first maxModelLabels models written a label of their own and reports the rest as _other", async () => {
    const { index, metrics, registry } = setup({ maxModelLabels: 2 });
    admitByReport(metrics, "model-a", "model-b", "model-c");
    for (const model of ["model-a", "model-b", "model-c", "model-d", "model-a"]) {
      metrics.recordLookup(model, "NO_HINT", false, 0.00001);
    }
    index.indexSize = sizeOf({ "model-b": 5, "model-c": 7, "model-e": 1 });

    const calls = (model: string) => readLookupCalls(registry, model, "NO_HINT", "false");
    expect(await calls("model-a")).toBe(2);
    expect(await calls("model-b")).toBe(1);
    expect(await calls("_other")).toBe(2);
    expect(await calls("model-c")).toBeUndefined();
    expect(await readSample(registry, "inferencecache_index_entries", { model: "model-b" })).toBe(
      5,
    );
    expect(await readSample(registry, "inferencecache_index_entries", { model: "_other" })).toBe(8);
    expect(
      await readSample(registry, "inferencecache_index_entries", { model: "model-c" }),
    ).toBeUndefined();
  });

  it("never lets lookups alone take a label, so made-up models cannot crowd out real ones", async () => {
    const { index, metrics, registry } = setup({ maxModelLabels: 2 });
    for (let i = 0; i < 50; i++) metrics.recordLookup(`typo-${i}`, "NO_HINT", false, 0.00001);
    metrics.recordReport("llama-3-8b", reportOutcome({ dropped: { "hash-scheme-missing": 1 } }));
    metrics.recordLookup("llama-3-8b", "NO_HINT", false, 0.00001);
    metrics.recordPublish("llama-3-8b", publishOutcome({ applied: 1, addedPrefixes: 2 }));
    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.00001);
    index.indexSize = sizeOf({ "llama-3-8b": 2 });

    const calls = (model: string, reasonCode: string, hintUsed: "true" | "false") =>
      readLookupCalls(registry, model, reasonCode, hintUsed);
    expect(await calls("_other", "NO_HINT", "false")).toBe(51);
    expect(await calls("llama-3-8b", "PREFIX_MATCH", "true")).toBe(1);
    expect(await calls("typo-0", "NO_HINT", "false")).toBeUndefined();
    expect(
      await readSample(registry, "inferencecache_index_entries", { model: "llama-3-8b" }),
    ).toBe(2);
  });

  it("never gives a label of its own to a model name the index would reject", async () => {
    const { metrics, registry } = setup({ maxModelLabels: 2 });
    admitByReport(metrics, "", "x".repeat(10_000), "model-a");
    metrics.recordLookup("", "INVALID_REQUEST", false, 0.00001);
    metrics.recordLookup("x".repeat(10_000), "INVALID_REQUEST", false, 0.00001);
    metrics.recordLookup("model-a", "NO_HINT", false, 0.00001);

    expect(
      await readSample(registry, "inferencecache_lookup_route_calls_total", {
        model: "_other",
        reason_code: "INVALID_REQUEST",
        hint_used: "false",
      }),
    ).toBe(2);
    expect(
      await readSample(registry, "inferencecache_lookup_route_calls_total", {
        model: "model-a",
        reason_code: "NO_HINT",
        hint_used: "false",
      }),
    ).toBe(1);
  });

  it("rejects a maxModelLabels that is not a non-negative integer", () => {
    expect(() => setup({ maxModelLabels: -1 })).toThrow(RangeError);
    expect(() => setup({ maxModelLabels: 1.5 })).toThrow(RangeError);
  });

  it("exposes every ingest and eviction series at 0 before anything happens", async () => {
    const { registry } = setup();
    const zeroes = [
      ["inferencecache_ingested_prefixes_total", { source: "report" }],
      ["inferencecache_ingested_prefixes_total", { source: "event" }],
      ["inferencecache_ingest_events_total", { outcome: "applied" }],
      ["inferencecache_ingest_events_total", { outcome: "ignored" }],
      ["inferencecache_ingest_dropped_total", { reason: "hash_scheme_missing" }],
      ["inferencecache_ingest_dropped_total", { reason: "prefix_hash_empty" }],
      ["inferencecache_ingest_dropped_total", { reason: "prefix_hash_too_long" }],
      ["inferencecache_ingest_dropped_total", { reason: "unknown_event_type" }],
      ["inferencecache_evictions_total", { reason: "ttl" }],
      ["inferencecache_evictions_total", { reason: "cap" }],
      ["inferencecache_evictions_total", { reason: "event" }],
      ["inferencecache_evictions_total", { reason: "cleared" }],
    ] as const;
    for (const [name, labels] of zeroes) {
      expect(await readSample(registry, name, labels), `${name} ${JSON.stringify(labels)}`).toBe(0);
    }
  });

  it("tells a lookup of a few microseconds from one of tens of microseconds", async () => {
    const { metrics, registry } = setup();
    admitByReport(metrics, "llama-3-8b");
    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.000_002);
    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.000_02);
    metrics.recordLookup("llama-3-8b", "PREFIX_MATCH", true, 0.08);

    const bucket = (le: number) =>
      readSample(registry, "inferencecache_lookup_route_latency_seconds_bucket", {
        model: "llama-3-8b",
        le,
      });
    expect(await bucket(LOOKUP_LATENCY_BUCKETS[0] ?? 0)).toBe(0);
    expect(await bucket(5e-6)).toBe(1);
    expect(await bucket(2.5e-5)).toBe(2);
    expect(await bucket(0.05)).toBe(2);
    expect(await bucket(0.1)).toBe(3);
  });

  it("counts every latency and its sum, across scrapes and however many come between", async () => {
    const { metrics, registry } = setup();
    admitByReport(metrics, "llama-3-8b");
    const count = () =>
      readSample(registry, "inferencecache_lookup_route_latency_seconds_count", {
        model: "llama-3-8b",
      });
    for (let i = 0; i < 1_000; i++) metrics.recordLookup("llama-3-8b", "NO_HINT", false, 0.001);
    expect(await count()).toBe(1_000);
    metrics.recordLookup("llama-3-8b", "NO_HINT", false, 0.001);
    expect(await count()).toBe(1_001);
    const sum = await readSample(registry, "inferencecache_lookup_route_latency_seconds_sum", {
      model: "llama-3-8b",
    });
    expect(sum).toBeCloseTo(1.001);
  });

  it("registers default process metrics on its own registry, never on the global one", async () => {
    const index = new FakeCacheIndex();
    const metrics = createIndexMetrics({ index });

    const names = (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names).toContain("process_cpu_user_seconds_total");
    expect(names).toContain("nodejs_heap_size_used_bytes");
    expect(names).toContain("inferencecache_index_entries");
    expect(globalRegistry.getSingleMetric("inferencecache_index_entries")).toBeUndefined();
    expect(globalRegistry.getSingleMetric("process_cpu_user_seconds_total")).toBeUndefined();
  });

  it("registers on a registry it is given", async () => {
    const registry = new Registry();
    const metrics = createIndexMetrics({
      index: new FakeCacheIndex(),
      registry,
      collectDefaultMetrics: false,
    });

    expect(metrics.registry).toBe(registry);
    expect(registry.getSingleMetric("inferencecache_lookup_route_calls_total")).toBeDefined();
    expect(registry.getSingleMetric("process_cpu_user_seconds_total")).toBeUndefined();
  });
});
