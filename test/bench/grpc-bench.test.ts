import { describe, expect, it } from "vitest";
import { lookupLatencyTotals } from "../../bench/grpc-bench.js";
import { createIndexMetrics } from "../../src/metrics/index-metrics.js";
import { FakeCacheIndex } from "../metrics/fake-cache-index.js";

describe("lookupLatencyTotals()", () => {
  it("sums the lookup latency histogram's series from the sidecar's own /metrics text", async () => {
    const metrics = createIndexMetrics({
      index: new FakeCacheIndex(),
      collectDefaultMetrics: false,
    });
    metrics.recordLookup("llama", "PREFIX_MATCH", true, 0.000_002);
    metrics.recordLookup("llama", "NO_HINT", false, 0.000_003);
    metrics.recordLookup("mistral", "PREFIX_MATCH", true, 0.000_005);
    // Counted, but with no latency: not in the histogram.
    metrics.recordLookup("mistral", "NOT_READY", false);

    const totals = lookupLatencyTotals(await metrics.registry.metrics());

    expect(totals.count).toBe(3);
    expect(totals.seconds).toBeCloseTo(0.000_01, 12);
  });

  it("reads zeros from an exposition without the histogram", () => {
    expect(
      lookupLatencyTotals("# HELP other_seconds x\nother_seconds_sum 4\nother_seconds_count 2\n"),
    ).toEqual({
      seconds: 0,
      count: 0,
    });
  });
});
