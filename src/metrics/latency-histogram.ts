import type { Metric, OpenMetricsContentType, PrometheusContentType, Registry } from "prom-client";

/**
 * A sample as prom-client's registry reads it from a metric. For the text exposition the series'
 * own label is a shared label, written after the sample's (and the registry's default) labels, as
 * prom-client's Histogram does; for JSON it is merged into `labels`.
 */
export interface HistogramSample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels?: Readonly<Record<string, string>>;
  readonly value: number;
  /** Set on bucket samples only, as prom-client does: histograms here keep no exemplars. */
  readonly exemplar?: null;
}

/** What prom-client's registry reads from a histogram at a scrape. */
export interface HistogramSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: "histogram";
  readonly aggregator: "sum";
  readonly values: HistogramSample[];
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

  /**
   * Counts one latency in the first bucket whose bound it does not exceed. O(buckets), no
   * allocation. A value that is not finite is not counted: prom-client would throw, and a hot path
   * must not (nor let one NaN turn the sum into NaN for good).
   */
  observe(seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    const bounds = this.#bounds;
    let bucket = 0;
    while (bucket < bounds.length && seconds > (bounds[bucket] as number)) bucket++;
    this.#counts[bucket] = (this.#counts[bucket] as number) + 1;
    this.#sum += seconds;
    this.#count++;
  }

  /**
   * The series as Prometheus samples: cumulative buckets, `+Inf`, sum and count. With `shared`,
   * the series' label goes in `sharedLabels` (the text exposition's order), else in `labels`.
   */
  samples(name: string, labelName: string, label: string, shared: boolean): HistogramSample[] {
    const own = (labels: Record<string, string | number>) =>
      shared ? labels : { ...labels, [labelName]: label };
    const sharedLabels = shared ? { [labelName]: label } : undefined;
    const sample = (metricName: string, labels: Record<string, string | number>, value: number) =>
      sharedLabels === undefined
        ? { metricName, labels: own(labels), value }
        : { metricName, labels: own(labels), sharedLabels, value };
    const samples: HistogramSample[] = [];
    let cumulative = 0;
    for (let bucket = 0; bucket < this.#bounds.length; bucket++) {
      cumulative += this.#counts[bucket] as number;
      const le = this.#bounds[bucket] as number;
      samples.push({ ...sample(`${name}_bucket`, { le }, cumulative), exemplar: null });
    }
    samples.push(
      { ...sample(`${name}_bucket`, { le: "+Inf" }, this.#count), exemplar: null },
      sample(`${name}_sum`, {}, this.#sum),
      sample(`${name}_count`, {}, this.#count),
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
  /** The metric's name, as prom-client's `Histogram` takes it. */
  readonly name: string;
  /** The metric's help text. */
  readonly help: string;
  /** The one label series are kept by (say `model`); not `le`, which the buckets use. */
  readonly labelName: string;
  /** Upper bounds, in seconds; sorted and deduplicated here. */
  readonly buckets: readonly number[];
  /** Registries the histogram is registered on. */
  readonly registers: readonly (
    | Registry<PrometheusContentType>
    | Registry<OpenMetricsContentType>
  )[];
}

/**
 * A Prometheus histogram of latencies with one label, for a hot path: recording one is a bucket
 * search and three additions on a series resolved once, with no label hashing and no allocation.
 * prom-client's `Histogram` builds and hashes a label key on every observation (about 0.7 µs per
 * lookup inside a loaded server, and garbage). It registers on each registry as a metric that
 * prom-client exposes as it would its own histogram (text and JSON, property-tested against it):
 * `<name>_bucket` cumulative by `le`, then `le="+Inf"`, `<name>_sum` and `<name>_count`, per label
 * value in the order first asked for.
 *
 * Where it differs: a series exists, at zero, from its first `labels()` call rather than its
 * first observation; `reset()` zeroes the series rather than dropping them (callers hold them);
 * a value that is not finite is not counted rather than thrown on.
 */
export class LatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  readonly #labelName: string;
  readonly #bounds: Float64Array;
  readonly #series = new Map<string, LatencySeries>();

  /** Throws a `RangeError` for the label name `le`. */
  constructor(options: LatencyHistogramOptions) {
    if (options.labelName === "le") {
      throw new RangeError("a histogram's label cannot be named le: the buckets use it");
    }
    this.name = options.name;
    this.help = options.help;
    this.#labelName = options.labelName;
    this.#bounds = Float64Array.from(new Set(options.buckets)).sort();
    // The registry reads a metric's name, help, type and aggregator, and calls get() (or
    // getForPromString()) and reset(): prom-client's typings name only its own classes.
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

  /** What the registry reads for JSON (`getMetricsAsJSON`): the series' label in `labels`. */
  get(): HistogramSnapshot {
    return this.#snapshot(false);
  }

  /** What the registry reads for the text exposition: the series' label shared. */
  getForPromString(): HistogramSnapshot {
    return this.#snapshot(true);
  }

  /** Zeroes every series (prom-client's `registry.resetMetrics()`), keeping them. */
  reset(): void {
    for (const series of this.#series.values()) series.reset();
  }

  #snapshot(shared: boolean): HistogramSnapshot {
    const values: HistogramSample[] = [];
    for (const [label, series] of this.#series) {
      values.push(...series.samples(this.name, this.#labelName, label, shared));
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }
}
