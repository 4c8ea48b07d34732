import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  LookupRouteRequestSchema,
  ReportCacheStateRequestSchema,
} from "../gen/inferencecache/v1/cache_index_pb.js";
import { H2UnaryClient } from "./h2-unary-client.js";
import { blockHash, MOONCAKE_BLOCK_TOKENS, type TraceRequest } from "./mooncake-trace.js";
import { median, quantile } from "./stats.js";

/** One measured phase: calls of one method at a fixed concurrency. */
export interface PhaseResult {
  readonly callsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Server CPU (user + system) per call, from /proc. */
  readonly serverCpuUsPerCall: number;
}

/** Medians over rounds, for LookupRoute and for a no-op RPC on the same server. */
export interface GrpcResult {
  readonly rounds: number;
  readonly callsPerPhase: number;
  readonly concurrency: number;
  readonly replicas: number;
  /** At `concurrency` calls in flight: throughput and server CPU. */
  readonly lookup: PhaseResult;
  readonly noop: PhaseResult;
  /** One call in flight: the latency a single gateway request sees. */
  readonly lookupSerial: PhaseResult;
  readonly noopSerial: PhaseResult;
  /** Medians of the per-round ratios lookup / no-op, at `concurrency` calls in flight. */
  readonly cpuRatio: number;
  readonly p50Ratio: number;
  /** The same ratio of server CPU with one call in flight. */
  readonly serialCpuRatio: number;
}

export interface GrpcBenchOptions {
  readonly mainScript: string;
  readonly trace: readonly TraceRequest[];
  readonly replicas: number;
  readonly rounds: number;
  readonly callsPerPhase: number;
  readonly concurrency: number;
}

const SERVICE = "/inferencecache.v1.CacheIndexService";
const SCOPE = { tenant: "bench", model: "mooncake", hashScheme: "mooncake-bs512" };

/** Starts the sidecar as a child process on ephemeral ports and resolves with its gRPC address. */
export async function startServer(
  mainScript: string,
): Promise<{ child: ChildProcess; address: string }> {
  // BENCH_SERVER_NODE_ARGS passes flags to the server's node, e.g. "--cpu-prof" to profile it.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      mainScript,
      "--grpc-address",
      "127.0.0.1:0",
      "--http-address",
      "127.0.0.1:0",
      "--max-entries",
      "10000000",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const record = JSON.parse(line) as { grpc?: { port: number } };
    if (record.grpc?.port) return { child, address: `127.0.0.1:${record.grpc.port}` };
  }
  throw new Error("the sidecar exited before it logged its ports");
}

/**
 * CPU time a process has used, all its threads, in microseconds: the sum of each thread's run time
 * in `/proc/<pid>/task/<tid>/schedstat` (nanoseconds), or, where the kernel keeps no schedstat,
 * utime + stime from `/proc/<pid>/stat` (10 ms ticks).
 */
export function cpuMicros(pid: number): number {
  try {
    let nanos = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        nanos += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // A thread that ended between the listing and the read: its time is lost either way.
      }
    }
    if (nanos > 0) return nanos / 1000;
  } catch {
    // No task directory: fall back to the process's ticks.
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
}

async function phase(
  pid: number,
  calls: number,
  concurrency: number,
  call: (i: number) => Promise<unknown>,
): Promise<PhaseResult> {
  const latencies = new Float64Array(calls);
  let next = 0;
  const cpuBefore = cpuMicros(pid);
  const start = performance.now();
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      const t0 = performance.now();
      await call(i);
      latencies[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuMicros(pid) - cpuBefore;
  const sample = Array.from(latencies);
  return {
    callsPerSecond: calls / seconds,
    p50Us: quantile(sample, 0.5) * 1000,
    p99Us: quantile(sample, 0.99) * 1000,
    serverCpuUsPerCall: cpu / calls,
  };
}

function medianPhase(phases: readonly PhaseResult[]): PhaseResult {
  return {
    callsPerSecond: median(phases.map((p) => p.callsPerSecond)),
    p50Us: median(phases.map((p) => p.p50Us)),
    p99Us: median(phases.map((p) => p.p99Us)),
    serverCpuUsPerCall: median(phases.map((p) => p.serverCpuUsPerCall)),
  };
}

/**
 * Loads the trace into a sidecar in another process, then alternates phases of LookupRoute (each
 * call a trace request's chain) and of grpc.health.v1.Health/Check (the no-op) on the same server
 * and connection. The ratio of server CPU per call is the figure that survives a noisy machine.
 */
export async function runGrpcBenchmark(options: GrpcBenchOptions): Promise<GrpcResult> {
  const { child, address } = await startServer(options.mainScript);
  const pid = child.pid as number;
  // A lean client, so that the client's CPU (it shares the machine's cores) disturbs the server as
  // little as possible; requests are encoded before the phases, answers not decoded.
  const client = new H2UnaryClient(address);
  try {
    const chains = options.trace.map((request) => request.hashIds.map(blockHash));
    for (let i = 0; i < chains.length; i++) {
      const chain = chains[i] as Uint8Array[];
      await client.call(
        `${SERVICE}/ReportCacheState`,
        toBinary(
          ReportCacheStateRequestSchema,
          create(ReportCacheStateRequestSchema, {
            ...SCOPE,
            replicaId: `replica-${i % options.replicas}`,
            prefixes: chain.map((prefixHash, d) => ({
              prefixHash,
              tokenCount: (d + 1) * MOONCAKE_BLOCK_TOKENS,
            })),
          }),
        ),
      );
    }
    const lookups = chains.map((prefixHashes) =>
      toBinary(
        LookupRouteRequestSchema,
        create(LookupRouteRequestSchema, { ...SCOPE, prefixHashes }),
      ),
    );
    const noopRequest = new Uint8Array(0); // HealthCheckRequest{service: ""}
    const callLookup = (i: number) =>
      client.call(`${SERVICE}/LookupRoute`, lookups[i % lookups.length] as Uint8Array);
    const callNoop = () => client.call("/grpc.health.v1.Health/Check", noopRequest);

    // Warm both paths up before measuring.
    await phase(pid, Math.min(2_000, options.callsPerPhase), options.concurrency, callLookup);
    await phase(pid, Math.min(2_000, options.callsPerPhase), options.concurrency, callNoop);
    const lookupPhases: PhaseResult[] = [];
    const noopPhases: PhaseResult[] = [];
    const lookupSerial: PhaseResult[] = [];
    const noopSerial: PhaseResult[] = [];
    const serialCalls = Math.ceil(options.callsPerPhase / 5);
    for (let round = 0; round < options.rounds; round++) {
      // Which method goes first alternates, so that neither always runs on the other's heels.
      const noopFirst = round % 2 === 0;
      const pair = async (calls: number, concurrency: number) => {
        const run = (call: (i: number) => Promise<unknown>) => phase(pid, calls, concurrency, call);
        if (noopFirst) return { noop: await run(callNoop), lookup: await run(callLookup) };
        const lookup = await run(callLookup);
        return { noop: await run(callNoop), lookup };
      };
      const loaded = await pair(options.callsPerPhase, options.concurrency);
      noopPhases.push(loaded.noop);
      lookupPhases.push(loaded.lookup);
      const serial = await pair(serialCalls, 1);
      noopSerial.push(serial.noop);
      lookupSerial.push(serial.lookup);
    }
    const ratios = (pick: (p: PhaseResult) => number, lookup = lookupPhases, noop = noopPhases) =>
      median(lookup.map((p, i) => pick(p) / pick(noop[i] as PhaseResult)));
    return {
      rounds: options.rounds,
      callsPerPhase: options.callsPerPhase,
      concurrency: options.concurrency,
      replicas: options.replicas,
      lookup: medianPhase(lookupPhases),
      noop: medianPhase(noopPhases),
      lookupSerial: medianPhase(lookupSerial),
      noopSerial: medianPhase(noopSerial),
      cpuRatio: ratios((p) => p.serverCpuUsPerCall),
      p50Ratio: ratios((p) => p.p50Us),
      serialCpuRatio: ratios((p) => p.serverCpuUsPerCall, lookupSerial, noopSerial),
    };
  } finally {
    client.close();
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}
