import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import { createIndexKvEventSink } from "../src/kv-events/index-kv-event-sink.js";
import type { KvEventSink } from "../src/kv-events/kv-event-sink.js";
import type { KvEventSource } from "../src/kv-events/kv-event-source.js";
import type { KvEventBatch } from "../src/kv-events/kv-event-types.js";
import type { KvEventStream } from "../src/kv-stream/kv-event-stream.js";
import { createZmqKvEventStream } from "../src/kv-stream/zmq-kv-event-stream.js";
import type { KvEventPublisherOptions } from "./kv-event-publisher.js";
import { fmt, median } from "./stats.js";

/** Options of {@link runKvEventStreamBenchmark}. */
export interface KvEventStreamBenchOptions {
  /** The compiled publisher, `dist/bench/kv-event-publisher.js`. */
  readonly publisherScript: string;
  /** Engine streams, each its own PUB socket and subscription. */
  readonly streams: number;
  readonly batchesPerStream: number;
  /** Blocks each batch stores (and, once warm, removes). Each batch carries two events. */
  readonly blocksPerBatch: number;
  readonly rounds: number;
  /**
   * A fresh sink per round.
   * @default the sidecar's sink (`createIndexKvEventSink`) over a new index
   */
  readonly createSink?: () => KvEventSink;
}

/** What one configuration measured (medians over rounds). */
export interface KvEventStreamBenchResult {
  readonly streams: number;
  readonly batches: number;
  readonly blocksPerBatch: number;
  /** Events (BlockStored + BlockRemoved) decoded and applied to the sink per second. */
  readonly eventsPerSecond: number;
  /** Blocks stored or removed per second. */
  readonly blockOpsPerSecond: number;
  /** CPU time of the measured process per event, in µs. */
  readonly cpuUsPerEvent: number;
  /** Gaps seen: 0 unless ZMQ dropped messages. */
  readonly gaps: number;
}

/**
 * Engines' KV-event streams end to end over loopback TCP: a publisher process sends
 * `streams x batchesPerStream` batches; this process subscribes with one `createZmqKvEventStream`
 * per engine (framing, msgpack decoding, seq ordering, the sink's apply). How fast the subscriber
 * drains a backlog is what is measured: its event loop is held (asleep, not spinning) while the
 * publisher sends everything into ZMQ's queues (no high-water mark on either side, so nothing is
 * dropped), then the clock and the CPU meter run from its release to the last batch applied. The
 * figure is thus the subscriber's, not the publisher's nor their contention's on a small machine.
 */
export async function runKvEventStreamBenchmark(
  options: KvEventStreamBenchOptions,
): Promise<KvEventStreamBenchResult> {
  const rounds: RoundResult[] = [];
  // Round 0 warms the JIT up and is not counted.
  for (let round = 0; round <= options.rounds; round++) {
    const result = await runRound(options);
    if (round > 0) rounds.push(result);
  }
  const batches = options.streams * options.batchesPerStream;
  return {
    streams: options.streams,
    batches,
    blocksPerBatch: options.blocksPerBatch,
    eventsPerSecond: median(rounds.map((r) => r.events / r.seconds)),
    blockOpsPerSecond: median(rounds.map((r) => r.blockOps / r.seconds)),
    cpuUsPerEvent: median(rounds.map((r) => r.cpuUs / r.events)),
    gaps: Math.max(...rounds.map((r) => r.gaps)),
  };
}

/** The benchmark's results as markdown rows: `| streams | events/s | ... |`. */
export function formatKvEventStreamMarkdown(results: readonly KvEventStreamBenchResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.streams} | ${fmt(r.batches)} x ${r.blocksPerBatch} blocks | **${fmt(r.eventsPerSecond)}** | ${fmt(r.blockOpsPerSecond)} | ${fmt(r.cpuUsPerEvent)} µs | ${r.gaps} |`,
  );
  return [
    "| engine streams | batches (2 events each) | events/s decoded and applied | block ops/s | CPU per event | gaps |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

interface RoundResult {
  readonly seconds: number;
  readonly events: number;
  readonly blockOps: number;
  readonly cpuUs: number;
  readonly gaps: number;
}

async function runRound(options: KvEventStreamBenchOptions): Promise<RoundResult> {
  const doneFile = join(tmpdir(), `kv-event-bench-${process.pid}-${Date.now()}`);
  const publisherOptions: KvEventPublisherOptions = {
    streams: options.streams,
    batchesPerStream: options.batchesPerStream,
    blocksPerBatch: options.blocksPerBatch,
    chainsKept: 64,
    doneFile,
  };
  const child = spawn(
    process.execPath,
    [options.publisherScript, JSON.stringify(publisherOptions)],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done) throw new Error("the publisher exited early");
    return JSON.parse(line.value) as { endpoints?: string[]; sending?: true };
  };

  const expected = options.streams * options.batchesPerStream;
  const inner = (options.createSink ?? createIndexSink)();
  let applied = 0;
  let events = 0;
  let blockOps = 0;
  let lastAt = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const sink: KvEventSink = {
    apply(source: KvEventSource, batch: KvEventBatch) {
      inner.apply(source, batch);
      applied++;
      events += batch.events.length;
      for (const event of batch.events) {
        if (event.type !== "AllBlocksCleared") blockOps += event.blockHashes.length;
      }
      if (applied === expected) {
        lastAt = performance.now();
        done();
      }
    },
    clear: (source, rank, reason) => inner.clear(source, rank, reason),
    keepAlive: (source, ranks, until) => inner.keepAlive(source, ranks, until),
  };

  const { endpoints = [] } = await next();
  const streams: KvEventStream[] = endpoints.map((endpoint, i) =>
    createZmqKvEventStream({
      source: benchSource(i, endpoint),
      sink,
      clock: performance,
      receiveHighWaterMark: 0,
    }),
  );
  await next(); // every stream has subscribed: the publisher is sending
  holdUntilExists(doneFile);
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  await finished;
  const cpu = process.cpuUsage(cpuAtStart);
  rmSync(doneFile, { force: true });
  const gaps = streams.reduce(
    (sum, stream) => sum + stream.state().replicas.reduce((s, r) => s + r.gaps, 0),
    0,
  );
  await Promise.all(streams.map((stream) => stream.close()));
  child.stdin.end();
  await new Promise((resolve) => child.once("exit", resolve));
  const seconds = (lastAt - startedAt) / 1000;
  return { seconds, events, blockOps, cpuUs: cpu.user + cpu.system, gaps };
}

/**
 * Blocks this thread (sleeping, so the publisher has the CPU) until `path` exists, then a little
 * longer for ZMQ's I/O threads to move the last messages across.
 */
function holdUntilExists(path: string): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 120_000;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error("the publisher did not finish within 120 s");
    Atomics.wait(sleeper, 0, 0, 5);
  }
  Atomics.wait(sleeper, 0, 0, 200);
}

function createIndexSink(): KvEventSink {
  const index = createCacheIndex({ clock: performance, maxEntries: 10_000_000, ttlMs: 86_400_000 });
  return createIndexKvEventSink({ index });
}

function benchSource(i: number, endpoint: string): KvEventSource {
  return {
    name: `engine-${i}`,
    engine: "vllm",
    endpoint,
    replayEndpoint: undefined,
    topic: "",
    tenant: "bench",
    model: "m",
    hashScheme: "s",
    blockSize: 16,
    replicaId: `engine-${i}`,
    replicaIdTemplate: "{replica}/dp{rank}",
  };
}
