import type { Metric, Registry } from "prom-client";

/** A sample as prom-client's registry reads it from a metric's `get()`. */
export interface HistogramSample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  /** Set on bucket samples only, as prom-client does: histograms here keep no exemplars. */
  readonly exemplar?: null;
}

/** One label value's buckets: what recording a latency writes. */
export class LatencySeries {
  /** Observations per bucket (not cumulative); the last counts those above every bound. */
  readonly #counts: Float64Array;
  readonly #bounds: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Counts one latency in the first bucket whose bound it does not exceed. O(buckets), no allocation. */
  observe(seconds: number): void {
    const bounds = this.#bounds;
    let bucket = 0;
    while (bucket < bounds.length && seconds > (bounds[bucket] as number)) bucket++;
    this.#counts[bucket] = (this.#counts[bucket] as number) + 1;
    this.#sum += seconds;
    this.#count++;
  }

  /** The series as Prometheus samples: cumulative buckets, `+Inf`, sum and count. */
  samples(name: string, labelName: string, label: string): HistogramSample[] {
    const samples: HistogramSample[] = [];
    let cumulative = 0;
    for (let bucket = 0; bucket < this.#bounds.length; bucket++) {
      cumulative += this.#counts[bucket] as number;
      const le = this.#bounds[bucket] as number;
      samples.push({
        metricName: `${name}_bucket`,
        labels: { le, [labelName]: label },
        value: cumulative,
        exemplar: null,
      });
    }
    samples.push(
      {
        metricName: `${name}_bucket`,
        labels: { le: "+Inf", [labelName]: label },
        value: this.#count,
        exemplar: null,
      },
      { metricName: `${name}_sum`, labels: { [labelName]: label }, value: this.#sum },
      { metricName: `${name}_count`, labels: { [labelName]: label }, value: this.#count },
    );
    return samples;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }
}

export interface LatencyHistogramOptions {
  readonly name: string;
  readonly help: string;
  /** The one label series are kept by (say `model`). */
  readonly labelName: string;
  /** Upper bounds, in seconds; sorted and deduplicated here. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

/**
 * A Prometheus histogram of latencies with one label, for a hot path: recording one is a bucket
 * search and three additions on a series resolved once, with no label hashing and no allocation.
 * prom-client's `Histogram` builds and hashes a label key on every observation (about 0.7 µs per
 * lookup inside a loaded server, and garbage). It registers on each registry as a metric that
 * prom-client exposes like its own histograms: `<name>_bucket{le,label}` cumulative, then
 * `le="+Inf"`, `<name>_sum` and `<name>_count`, per label value in the order first recorded.
 */
export class LatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  readonly #labelName: string;
  readonly #bounds: Float64Array;
  readonly #series = new Map<string, LatencySeries>();

  constructor(options: LatencyHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.#labelName = options.labelName;
    this.#bounds = Float64Array.from(new Set(options.buckets)).sort();
    // The registry reads a metric's name, help, type and aggregator, and calls get() and reset():
    // prom-client's typings name only its own classes.
    for (const registry of options.registers) {
      registry.registerMetric(this as unknown as Metric);
    }
  }

  /** The series of one label value, created (all zeros) the first time it is asked for. */
  labels(label: string): LatencySeries {
    let series = this.#series.get(label);
    if (series === undefined) {
      series = new LatencySeries(this.#bounds);
      this.#series.set(label, series);
    }
    return series;
  }

  /** What prom-client's registry reads at each scrape. */
  get(): {
    name: string;
    help: string;
    type: "histogram";
    aggregator: "sum";
    values: HistogramSample[];
  } {
    const values: HistogramSample[] = [];
    for (const [label, series] of this.#series) {
      values.push(...series.samples(this.name, this.#labelName, label));
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Zeroes every series (prom-client's `registry.resetMetrics()`). */
  reset(): void {
    for (const series of this.#series.values()) series.reset();
  }
}
