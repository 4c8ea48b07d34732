import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { cpuMicros, startServer } from "./grpc-bench.js";
import {
  DEFAULT_REPLAY_CAPACITY_BLOCKS,
  DEFAULT_REPLAY_SEED,
  DEFAULT_REPLAY_TRACE_COPIES,
  DEFAULT_REPLAY_WORKERS,
  type ReplayTotals,
  replayBlockOps,
  replayOps,
} from "./replay-bench.js";
import { fmt, median } from "./stats.js";

/**
 * The Mooncake replay over gRPC: the same schedule as the in-process replay (see
 * `replay-bench.ts`), sent by a client in its own process to the real sidecar in another. Each
 * lookup is one `LookupRoute` call; each request's events are one `PublishEvent` call.
 */

/** What the parent tells the client process (as JSON in its first argument). */
export interface ReplayClientOptions {
  readonly address: string;
  readonly tracePath: string;
  readonly workers: number;
  readonly capacityBlocks: number;
  readonly traceCopies: number;
  readonly seed: number;
  readonly fraction: number;
  readonly concurrency: number;
  readonly warmupFraction: number;
}

/**
 * The lines the client prints on stdout, one JSON object each: `timed-start` just before the timed
 * replay (the parent reads the server's CPU then), then `result`.
 */
export type ReplayClientMessage =
  | { readonly type: "timed-start" }
  | { readonly type: "result"; readonly result: ReplayClientResult };

/** One round as the client measured it. */
export interface ReplayClientResult {
  readonly totals: ReplayTotals;
  /** Wall time of the timed replay. */
  readonly seconds: number;
  readonly lookupP50Us: number;
  readonly lookupP99Us: number;
  readonly meanMatchedBlocks: number;
  /** The scope's total entries after the replay, from `GetCacheState`. */
  readonly holderEntries: number;
}

/** Options of {@link runGrpcReplayBenchmark}. */
export interface GrpcReplayOptions {
  /** The sidecar's compiled entry, `dist/src/main.js`. */
  readonly mainScript: string;
  /** The compiled client entry, `dist/bench/grpc-replay-client.js`. */
  readonly clientScript: string;
  /** The Mooncake trace (JSON lines); the client loads it itself. */
  readonly tracePath: string;
  /** @default DEFAULT_REPLAY_WORKERS */
  readonly workers?: number;
  /** @default DEFAULT_REPLAY_CAPACITY_BLOCKS */
  readonly capacityBlocks?: number;
  /** @default DEFAULT_REPLAY_TRACE_COPIES */
  readonly traceCopies?: number;
  /** @default DEFAULT_REPLAY_SEED */
  readonly seed?: number;
  /** Replays only this head fraction of the duplicated trace. @default 1 */
  readonly fraction?: number;
  /** Calls in flight: lookups, and publishes kept in order per worker. @default 16 */
  readonly concurrency?: number;
  /** Each round on a fresh server and client. @default 3 */
  readonly rounds?: number;
  /** Head of the schedule replayed untimed first, under another tenant. @default 0.1 */
  readonly warmupFraction?: number;
  /**
   * The sidecar's TTL. It must outlast the replay so that nothing expires while the client is
   * still sending; the default is a day.
   * @default 86_400
   */
  readonly ttlSeconds?: number;
}

/** What the gRPC replay measured: medians over rounds. */
export interface GrpcReplayResult {
  readonly workers: number;
  readonly capacityBlocks: number;
  readonly traceCopies: number;
  readonly fraction: number;
  readonly concurrency: number;
  readonly rounds: number;
  readonly totals: ReplayTotals;
  /** (lookups + store events + remove events) / wall time of the timed replay, at the client. */
  readonly opsPerSecond: number;
  /** (blocks looked up + stored + removed) / wall time. */
  readonly blockOpsPerSecond: number;
  /** RPCs (`LookupRoute` + `PublishEvent`) per second. */
  readonly callsPerSecond: number;
  readonly lookupP50Us: number;
  readonly lookupP99Us: number;
  /** Server CPU (user + system, from /proc) per op over the timed replay. */
  readonly serverCpuUsPerOp: number;
  /** The client's CPU per op: when it nears 1e6 / ops per second, the client is the bottleneck. */
  readonly clientCpuUsPerOp: number;
  readonly holderEntries: number;
  readonly meanMatchedBlocks: number;
}

/**
 * Runs `rounds` rounds, each on a fresh sidecar (a child process, as `make bench` starts it) and a
 * fresh client process, so the client's CPU is not the parent's and each round starts from an
 * empty index.
 */
export async function runGrpcReplayBenchmark(
  options: GrpcReplayOptions,
): Promise<GrpcReplayResult> {
  const rounds = options.rounds ?? 3;
  const clientOptions = {
    tracePath: options.tracePath,
    workers: options.workers ?? DEFAULT_REPLAY_WORKERS,
    capacityBlocks: options.capacityBlocks ?? DEFAULT_REPLAY_CAPACITY_BLOCKS,
    traceCopies: options.traceCopies ?? DEFAULT_REPLAY_TRACE_COPIES,
    seed: options.seed ?? DEFAULT_REPLAY_SEED,
    fraction: options.fraction ?? 1,
    concurrency: options.concurrency ?? 16,
    warmupFraction: options.warmupFraction ?? 0.1,
  };
  const measured: ClientRun[] = [];
  for (let round = 0; round < rounds; round++) {
    const server = await startSidecar(options.mainScript, options.ttlSeconds ?? 86_400);
    try {
      measured.push(
        await runClient(options.clientScript, { ...clientOptions, address: server.address }, () =>
          cpuMicros(server.child.pid as number),
        ),
      );
    } finally {
      server.child.kill("SIGTERM");
      await new Promise((resolve) => server.child.once("exit", resolve));
    }
  }
  const first = measured[0]?.client;
  if (first === undefined) throw new RangeError("rounds must be at least 1");
  const { totals } = first;
  const ops = replayOps(totals);
  const blockOps = replayBlockOps(totals);
  const calls = totals.lookups + totals.batches;
  const of = (pick: (m: (typeof measured)[number]) => number) => median(measured.map(pick));
  return {
    workers: clientOptions.workers,
    capacityBlocks: clientOptions.capacityBlocks,
    traceCopies: clientOptions.traceCopies,
    fraction: clientOptions.fraction,
    concurrency: clientOptions.concurrency,
    rounds,
    totals,
    opsPerSecond: of((m) => ops / m.client.seconds),
    blockOpsPerSecond: of((m) => blockOps / m.client.seconds),
    callsPerSecond: of((m) => calls / m.client.seconds),
    lookupP50Us: of((m) => m.client.lookupP50Us),
    lookupP99Us: of((m) => m.client.lookupP99Us),
    serverCpuUsPerOp: of((m) => m.serverCpuUs / ops),
    clientCpuUsPerOp: of((m) => m.clientCpuUs / ops),
    holderEntries: of((m) => m.client.holderEntries),
    meanMatchedBlocks: of((m) => m.client.meanMatchedBlocks),
  };
}

/** Starts the sidecar with `ttlSeconds`, which `startServer` passes on through the environment. */
async function startSidecar(mainScript: string, ttlSeconds: number) {
  // startServer spawns synchronously, before its first await: the child inherits this variable,
  // and the parent's environment is restored at once for whatever runs after.
  const previous = process.env.INFERENCECACHE_TTL_SECONDS;
  process.env.INFERENCECACHE_TTL_SECONDS = String(ttlSeconds);
  const started = startServer(mainScript);
  if (previous === undefined) delete process.env.INFERENCECACHE_TTL_SECONDS;
  else process.env.INFERENCECACHE_TTL_SECONDS = previous;
  return started;
}

/** One client process's result, with the CPU both processes spent on its timed replay. */
interface ClientRun {
  readonly client: ReplayClientResult;
  readonly serverCpuUs: number;
  readonly clientCpuUs: number;
}

/** Runs one client process to completion; reads both processes' CPU around its timed replay. */
async function runClient(
  clientScript: string,
  options: ReplayClientOptions,
  serverCpuMicros: () => number,
): Promise<ClientRun> {
  // BENCH_CLIENT_NODE_ARGS passes flags to the client's node, e.g. "--cpu-prof" to profile it.
  const nodeArgs = (process.env.BENCH_CLIENT_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(process.execPath, [...nodeArgs, clientScript, JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const clientCpuMicros = () => cpuMicros(child.pid as number);
  let serverAtStart = 0;
  let clientAtStart = 0;
  let outcome: ClientRun | undefined;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const message = JSON.parse(line) as ReplayClientMessage;
    if (message.type === "timed-start") {
      serverAtStart = serverCpuMicros();
      clientAtStart = clientCpuMicros();
    } else {
      outcome = {
        client: message.result,
        serverCpuUs: serverCpuMicros() - serverAtStart,
        clientCpuUs: clientCpuMicros() - clientAtStart,
      };
    }
  }
  const code = await exited;
  if (outcome === undefined || code !== 0) {
    throw new Error(`the replay client exited with ${code} before reporting a result`);
  }
  return outcome;
}

/** The gRPC replay's figures as a Markdown table, for RESULTS.md. */
export function formatGrpcReplayMarkdown(result: GrpcReplayResult): string {
  const { totals } = result;
  const rounds = result.rounds === 1 ? "one round" : `median of ${result.rounds} rounds`;
  return `| Mooncake replay over gRPC (${rounds}) | value |
|---|---|
| workers; KV capacity per worker; trace copies | ${fmt(result.workers)}; ${fmt(result.capacityBlocks)} blocks; ${result.traceCopies}${result.fraction < 1 ? ` (first ${fmt(result.fraction * 100)}%)` : ""} |
| ops: lookups + store events + remove events | ${fmt(totals.lookups)} + ${fmt(totals.storedEvents)} + ${fmt(totals.removedEvents)} |
| calls in flight (publishes in order per worker) | ${result.concurrency} |
| **ops/s** | **${fmt(result.opsPerSecond)}** |
| block ops/s; RPCs/s | ${fmt(result.blockOpsPerSecond)}; ${fmt(result.callsPerSecond)} |
| **\`LookupRoute\` p50 / p99** (client side) | **${fmt(result.lookupP50Us)} µs / ${fmt(result.lookupP99Us)} µs** |
| CPU per op: server; client | ${fmt(result.serverCpuUsPerOp)} µs; ${fmt(result.clientCpuUsPerOp)} µs |
| holder entries at the end | ${fmt(result.holderEntries)} |
| mean matched blocks of the top hint | ${fmt(result.meanMatchedBlocks)} |`;
}
