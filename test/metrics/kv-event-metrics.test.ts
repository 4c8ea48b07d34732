import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type {
  KvEventReplicaState,
  KvEventStreamState,
} from "../../src/kv-stream/kv-event-stream.js";
import { registerKvEventMetrics } from "../../src/metrics/kv-event-metrics.js";
import { kvEventSource } from "../support/kv-event-source.js";
import { readSample } from "./read-metric.js";

const source = kvEventSource();

function replica(overrides: Partial<KvEventReplicaState> = {}): KvEventReplicaState {
  return {
    rank: 0,
    replicaId: "pod-a/dp0",
    lastSeq: 9,
    lastBatchAgeSeconds: 1.5,
    batches: 10,
    events: { BlockStored: 7, BlockRemoved: 3, AllBlocksCleared: 1, unknown: 2 },
    gaps: 4,
    replays: 3,
    replayFailures: 1,
    restarts: 2,
    clears: { gap: 1, restart: 2 },
    ...overrides,
  };
}

function setup(initial: KvEventStreamState[]) {
  const registry = new Registry();
  let states = initial;
  registerKvEventMetrics({
    registry,
    states: () => states,
    rejections: (name) => (name === "pod-a" ? 3 : 0),
  });
  return { registry, set: (next: KvEventStreamState[]) => (states = next) };
}

const stream: KvEventStreamState = {
  source,
  connection: "connected",
  framingErrors: 5,
  decodeErrors: 6,
  replicas: [
    replica(),
    replica({ rank: 1, replicaId: "pod-a/dp1", batches: 1, lastBatchAgeSeconds: undefined }),
  ],
};

describe("registerKvEventMetrics()", () => {
  it.each([
    ["inferencecache_kv_events_connected", { source: "pod-a" }, 1],
    ["inferencecache_kv_events_decode_errors_total", { source: "pod-a", stage: "framing" }, 5],
    ["inferencecache_kv_events_decode_errors_total", { source: "pod-a", stage: "payload" }, 6],
    ["inferencecache_kv_events_batches_total", { source: "pod-a", replica: "pod-a/dp0" }, 10],
    ["inferencecache_kv_events_batches_total", { source: "pod-a", replica: "pod-a/dp1" }, 1],
    [
      "inferencecache_kv_events_events_total",
      { source: "pod-a", replica: "pod-a/dp0", type: "block_stored" },
      7,
    ],
    [
      "inferencecache_kv_events_events_total",
      { source: "pod-a", replica: "pod-a/dp0", type: "block_removed" },
      3,
    ],
    [
      "inferencecache_kv_events_events_total",
      { source: "pod-a", replica: "pod-a/dp0", type: "all_blocks_cleared" },
      1,
    ],
    [
      "inferencecache_kv_events_events_total",
      { source: "pod-a", replica: "pod-a/dp0", type: "unknown" },
      2,
    ],
    ["inferencecache_kv_events_gaps_total", { source: "pod-a", replica: "pod-a/dp0" }, 4],
    ["inferencecache_kv_events_rejected_total", { source: "pod-a" }, 3],
    [
      "inferencecache_kv_events_replays_total",
      { source: "pod-a", replica: "pod-a/dp0", outcome: "recovered" },
      3,
    ],
    [
      "inferencecache_kv_events_replays_total",
      { source: "pod-a", replica: "pod-a/dp0", outcome: "failed" },
      1,
    ],
    ["inferencecache_kv_events_restarts_total", { source: "pod-a", replica: "pod-a/dp0" }, 2],
    [
      "inferencecache_kv_events_clears_total",
      { source: "pod-a", replica: "pod-a/dp0", reason: "gap" },
      1,
    ],
    [
      "inferencecache_kv_events_clears_total",
      { source: "pod-a", replica: "pod-a/dp0", reason: "restart" },
      2,
    ],
    [
      "inferencecache_kv_events_seconds_since_last_batch",
      { source: "pod-a", replica: "pod-a/dp0" },
      1.5,
    ],
    [
      "inferencecache_kv_events_seconds_since_last_batch",
      { source: "pod-a", replica: "pod-a/dp1" },
      undefined,
    ],
  ])("reports %s%o as the streams' state says at scrape time", async (name, labels, expected) => {
    const { registry } = setup([stream]);
    expect(await readSample(registry, name, labels)).toBe(expected);
  });

  it("follows the state between scrapes, and drops the series of a source that left", async () => {
    const { registry, set } = setup([stream]);
    const batches = { source: "pod-a", replica: "pod-a/dp0" };
    expect(await readSample(registry, "inferencecache_kv_events_batches_total", batches)).toBe(10);

    set([{ ...stream, connection: "disconnected", replicas: [replica({ batches: 12 })] }]);
    expect(await readSample(registry, "inferencecache_kv_events_batches_total", batches)).toBe(12);
    expect(
      await readSample(registry, "inferencecache_kv_events_connected", { source: "pod-a" }),
    ).toBe(0);

    set([]);
    expect(
      await readSample(registry, "inferencecache_kv_events_batches_total", batches),
    ).toBeUndefined();
    expect(
      await readSample(registry, "inferencecache_kv_events_rejected_total", { source: "pod-a" }),
    ).toBeUndefined();
    expect(
      await readSample(registry, "inferencecache_kv_events_connected", { source: "pod-a" }),
    ).toBeUndefined();
  });
});
