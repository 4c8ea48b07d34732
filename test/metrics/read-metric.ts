import type { Registry } from "prom-client";

/**
 * The value of one sample on `registry`, or undefined when there is no such series. `sampleName` is
 * the name in the exposition (`x_total`, `x_bucket`, `x_count`); `labels` must match exactly.
 */
export async function readSample(
  registry: Registry,
  sampleName: string,
  labels: Readonly<Record<string, string | number>> = {},
): Promise<number | undefined> {
  const wanted = Object.entries(labels);
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const sample of metric.values) {
      const name = (sample as { metricName?: string }).metricName ?? metric.name;
      if (name !== sampleName) continue;
      const actual = sample.labels as Record<string, string | number | undefined>;
      if (Object.keys(actual).length !== wanted.length) continue;
      if (wanted.every(([key, value]) => String(actual[key]) === String(value))) {
        return sample.value;
      }
    }
  }
  return undefined;
}

/** `inferencecache_lookup_route_calls_total` for one model, reason code and hint_used value. */
export function readLookupCalls(
  registry: Registry,
  model: string,
  reasonCode: string,
  hintUsed: "true" | "false",
): Promise<number | undefined> {
  return readSample(registry, "inferencecache_lookup_route_calls_total", {
    model,
    reason_code: reasonCode,
    hint_used: hintUsed,
  });
}
