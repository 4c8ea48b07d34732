import fc from "fast-check";
import {
  Histogram,
  type OpenMetricsContentType,
  type PrometheusContentType,
  Registry,
} from "prom-client";
import { describe, expect, it } from "vitest";
import { LatencyHistogram } from "../../src/metrics/latency-histogram.js";

const NAME = "lookup_latency_seconds";
const HELP = "Latency.";
const BUCKETS = [1e-6, 2.5e-6, 1e-5, 1e-3, 0.1];

/** The same observations in prom-client's Histogram and in ours, each on a registry of its own. */
function both(
  observations: readonly (readonly [string, number])[],
  defaultLabels?: Record<string, string>,
  openMetrics = false,
) {
  const registry = (): Registry<PrometheusContentType> | Registry<OpenMetricsContentType> => {
    if (!openMetrics) return new Registry();
    const openMetricsRegistry = new Registry<OpenMetricsContentType>();
    openMetricsRegistry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    return openMetricsRegistry;
  };
  const theirs = registry();
  const reference = new Histogram({
    name: NAME,
    help: HELP,
    labelNames: ["model"],
    buckets: BUCKETS,
    registers: [theirs],
  });
  const ours = registry();
  const histogram = new LatencyHistogram({
    name: NAME,
    help: HELP,
    labelName: "model",
    buckets: BUCKETS,
    registers: [ours],
  });
  if (defaultLabels !== undefined) {
    theirs.setDefaultLabels(defaultLabels);
    ours.setDefaultLabels(defaultLabels);
  }
  for (const [model, seconds] of observations) {
    reference.labels(model).observe(seconds);
    histogram.labels(model).observe(seconds);
  }
  return { theirs, ours, histogram };
}

describe("LatencyHistogram", () => {
  it("exposes exactly what prom-client's Histogram exposes for the same observations", async () => {
    const model = fc.constantFrom("llama", "qwen", 'odd "model"\\name');
    const seconds = fc.oneof(
      fc.constantFrom(...BUCKETS, 0, 0.2),
      fc.double({ min: 0, max: 0.2, noNaN: true }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(model, seconds), { maxLength: 40 }),
        fc.option(fc.constant({ pod: "p-1" }), { nil: undefined }),
        fc.boolean(),
        async (obs, defaultLabels, openMetrics) => {
          const { theirs, ours } = both(obs, defaultLabels, openMetrics);
          expect(await ours.metrics()).toBe(await theirs.metrics());
          expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
          expect(await ours.metrics()).toBe(await theirs.metrics());
        },
      ),
      { numRuns: 200 },
    );
  });

  it("counts a latency equal to a bound in that bound's bucket, and one above all in +Inf only", async () => {
    const { ours } = both([
      ["m", 1e-5],
      ["m", 5],
    ]);
    const text = await ours.metrics();
    expect(text).toContain(`${NAME}_bucket{le="0.0000025",model="m"} 0`);
    expect(text).toContain(`${NAME}_bucket{le="0.00001",model="m"} 1`);
    expect(text).toContain(`${NAME}_bucket{le="0.1",model="m"} 1`);
    expect(text).toContain(`${NAME}_bucket{le="+Inf",model="m"} 2`);
    expect(text).toContain(`${NAME}_sum{model="m"} 5.00001`);
    expect(text).toContain(`${NAME}_count{model="m"} 2`);
  });

  it("does not count a value that is not finite", async () => {
    const { ours, histogram } = both([["m", 1e-3]]);
    histogram.labels("m").observe(Number.NaN);
    histogram.labels("m").observe(Number.POSITIVE_INFINITY);
    const text = await ours.metrics();
    expect(text).toContain(`${NAME}_count{model="m"} 1`);
    expect(text).toContain(`${NAME}_sum{model="m"} 0.001`);
  });

  it("refuses le as its label's name", () => {
    expect(
      () =>
        new LatencyHistogram({
          name: NAME,
          help: HELP,
          labelName: "le",
          buckets: BUCKETS,
          registers: [],
        }),
    ).toThrow(RangeError);
  });

  it("is zeroed by the registry's resetMetrics(), keeping its series", async () => {
    const { ours } = both([["m", 1e-3]]);
    ours.resetMetrics();
    const text = await ours.metrics();
    expect(text).toContain(`${NAME}_count{model="m"} 0`);
    expect(text).toContain(`${NAME}_bucket{le="+Inf",model="m"} 0`);
  });
});
