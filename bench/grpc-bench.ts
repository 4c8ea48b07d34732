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
import { mean, median, quantile, rangeOf } from "./stats.js";

/** One measured phase: calls of one method at a fixed concurrency. */
export interface PhaseResult {
  readonly callsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Server CPU (user + system) per call, from /proc. */
  readonly serverCpuUsPerCall: number;
}

/**
 * LookupRoute against a no-op RPC on the same server, for several servers: medians over servers of
 * each server's figures (the means over its phases, and the ratios of those).
 */
export interface GrpcResult {
  readonly servers: number;
  readonly roundsPerServer: number;
  readonly callsPerPhase: number;
  readonly serialCallsPerPhase: number;
  readonly concurrency: number;
  readonly replicas: number;
  /** At `concurrency` calls in flight: throughput and server CPU. */
  readonly lookup: PhaseResult;
  readonly noop: PhaseResult;
  /** One call in flight: the latency a single gateway request sees. */
  readonly lookupSerial: PhaseResult;
  readonly noopSerial: PhaseResult;
  /**
   * Server CPU per call, lookup / no-op, at `concurrency` calls in flight: per server, its lookup
   * phases' CPU over its no-op phases' (for as many calls); the median and range over servers.
   */
  readonly cpuRatio: number;
  readonly cpuRatioRange: readonly [number, number];
  /** The median over servers of the ratio of the phases' mean p50 latencies. */
  readonly p50Ratio: number;
  /** The server CPU ratio with one call in flight, and its range over servers. */
  readonly serialCpuRatio: number;
  readonly serialCpuRatioRange: readonly [number, number];
  /**
   * At `concurrency` calls in flight: server CPU per call of LookupRoute minus the no-op's, and of
   * that the time the index's lookup took (the sidecar's own lookup latency histogram), in µs;
   * medians over servers. The rest of the difference is decoding, the service and encoding, and
   * whatever more the gRPC stack's own work for the call costs than the no-op's.
   */
  readonly extraCpuUsPerCall: number;
  readonly indexUsPerLookup: number;
}

export interface GrpcBenchOptions {
  readonly mainScript: string;
  readonly trace: readonly TraceRequest[];
  readonly replicas: number;
  /** Servers started one after another, each loaded afresh. */
  readonly servers: number;
  /** Pairs of phases (lookup, no-op) per server, at each concurrency. */
  readonly roundsPerServer: number;
  readonly callsPerPhase: number;
  readonly concurrency: number;
}

/** One server's figures (see {@link GrpcResult}). */
interface ServerResult {
  readonly lookup: PhaseResult;
  readonly noop: PhaseResult;
  readonly lookupSerial: PhaseResult;
  readonly noopSerial: PhaseResult;
  readonly cpuRatio: number;
  readonly p50Ratio: number;
  readonly serialCpuRatio: number;
  readonly extraCpuUsPerCall: number;
  readonly indexUsPerLookup: number;
}

const SERVICE = "/inferencecache.v1.CacheIndexService";
const SCOPE = { tenant: "bench", model: "mooncake", hashScheme: "mooncake-bs512" };

/**
 * Starts the sidecar as a child process on ephemeral ports and resolves with its gRPC address and
 * its HTTP port (metrics).
 */
export async function startServer(
  mainScript: string,
): Promise<{ child: ChildProcess; address: string; httpPort: number }> {
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
    const record = JSON.parse(line) as { grpc?: { port: number }; http?: { port: number } };
    if (record.grpc?.port && record.http?.port) {
      return { child, address: `127.0.0.1:${record.grpc.port}`, httpPort: record.http.port };
    }
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

/** The sum (seconds) and count of the lookup latency histogram's series, all models together. */
export interface LookupLatencyTotals {
  readonly seconds: number;
  readonly count: number;
}

/** A sample line of the lookup latency histogram's sum or count, any labels: its kind and value. */
const LATENCY_SAMPLE =
  /^inferencecache_lookup_route_latency_seconds_(sum|count)(?:\{[^}]*\})? (\S+)$/;

/** Reads {@link LookupLatencyTotals} from a Prometheus text exposition; zeros when absent. */
export function lookupLatencyTotals(exposition: string): LookupLatencyTotals {
  let seconds = 0;
  let count = 0;
  for (const line of exposition.split("\n")) {
    const match = LATENCY_SAMPLE.exec(line);
    if (match === null) continue;
    if (match[1] === "sum") seconds += Number(match[2]);
    else count += Number(match[2]);
  }
  return { seconds, count };
}

async function scrapeLookupLatency(httpPort: number): Promise<LookupLatencyTotals> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
  return lookupLatencyTotals(await response.text());
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

/** Each figure of `phases` summarised by `summary`: their mean or their median, say. */
function summarisePhases(
  phases: readonly PhaseResult[],
  summary: (values: readonly number[]) => number,
): PhaseResult {
  return {
    callsPerSecond: summary(phases.map((p) => p.callsPerSecond)),
    p50Us: summary(phases.map((p) => p.p50Us)),
    p99Us: summary(phases.map((p) => p.p99Us)),
    serverCpuUsPerCall: summary(phases.map((p) => p.serverCpuUsPerCall)),
  };
}

/**
 * For each of `servers` sidecars in another process, one after another: loads the trace, then
 * alternates phases of LookupRoute (each call a trace request's chain) and of
 * grpc.health.v1.Health/Check (the no-op) on the same server and connection. The ratio of server
 * CPU per call is the figure that survives a noisy machine. On this host a server's ratio is
 * steady from phase to phase, but moves by a tenth or more from one server process to the next,
 * so the figure is the median over servers; long phases spread each major GC over many calls.
 */
export async function runGrpcBenchmark(options: GrpcBenchOptions): Promise<GrpcResult> {
  if (!(options.servers >= 1 && options.roundsPerServer >= 1)) {
    throw new RangeError("servers and roundsPerServer must be at least 1");
  }
  const results: ServerResult[] = [];
  for (let server = 0; server < options.servers; server++) {
    results.push(await benchmarkOneServer(options));
  }
  const pick = (figure: (r: ServerResult) => PhaseResult) =>
    summarisePhases(results.map(figure), median);
  const ratios = results.map((r) => r.cpuRatio);
  const serialRatios = results.map((r) => r.serialCpuRatio);
  return {
    servers: options.servers,
    roundsPerServer: options.roundsPerServer,
    callsPerPhase: options.callsPerPhase,
    serialCallsPerPhase: serialCalls(options),
    concurrency: options.concurrency,
    replicas: options.replicas,
    lookup: pick((r) => r.lookup),
    noop: pick((r) => r.noop),
    lookupSerial: pick((r) => r.lookupSerial),
    noopSerial: pick((r) => r.noopSerial),
    cpuRatio: median(ratios),
    cpuRatioRange: rangeOf(ratios),
    p50Ratio: median(results.map((r) => r.p50Ratio)),
    serialCpuRatio: median(serialRatios),
    serialCpuRatioRange: rangeOf(serialRatios),
    extraCpuUsPerCall: median(results.map((r) => r.extraCpuUsPerCall)),
    indexUsPerLookup: median(results.map((r) => r.indexUsPerLookup)),
  };
}

/** Calls per phase with one call in flight: a quarter, as each costs several times more. */
function serialCalls(options: GrpcBenchOptions): number {
  return Math.ceil(options.callsPerPhase / 4);
}

async function benchmarkOneServer(options: GrpcBenchOptions): Promise<ServerResult> {
  const { child, address, httpPort } = await startServer(options.mainScript);
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
    const serial = serialCalls(options);
    // The index's time in the loaded lookup phases, read from /metrics between phases (outside
    // their CPU readings). The no-op phases are read around too, so that the two kinds of phase
    // follow the same work on the server.
    let indexSeconds = 0;
    let indexLookups = 0;
    const loadedPhase = async (call: (i: number) => Promise<unknown>) => {
      const before = await scrapeLookupLatency(httpPort);
      const result = await phase(pid, options.callsPerPhase, options.concurrency, call);
      const after = await scrapeLookupLatency(httpPort);
      indexSeconds += after.seconds - before.seconds;
      indexLookups += after.count - before.count;
      return result;
    };
    for (let round = 0; round < options.roundsPerServer; round++) {
      // Which method goes first alternates, so that neither always runs on the other's heels.
      const noopFirst = round % 2 === 0;
      const pair = async (run: (call: (i: number) => Promise<unknown>) => Promise<PhaseResult>) => {
        if (noopFirst) return { noop: await run(callNoop), lookup: await run(callLookup) };
        const lookup = await run(callLookup);
        return { noop: await run(callNoop), lookup };
      };
      const loaded = await pair(loadedPhase);
      noopPhases.push(loaded.noop);
      lookupPhases.push(loaded.lookup);
      const single = await pair((call) => phase(pid, serial, 1, call));
      noopSerial.push(single.noop);
      lookupSerial.push(single.lookup);
    }
    // A server's figures are the means over its phases. Its phases of one concurrency have the
    // same number of calls, so the mean CPU per call is their CPU over all their calls.
    const lookup = summarisePhases(lookupPhases, mean);
    const noop = summarisePhases(noopPhases, mean);
    const lookupOne = summarisePhases(lookupSerial, mean);
    const noopOne = summarisePhases(noopSerial, mean);
    return {
      lookup,
      noop,
      lookupSerial: lookupOne,
      noopSerial: noopOne,
      cpuRatio: lookup.serverCpuUsPerCall / noop.serverCpuUsPerCall,
      p50Ratio: lookup.p50Us / noop.p50Us,
      serialCpuRatio: lookupOne.serverCpuUsPerCall / noopOne.serverCpuUsPerCall,
      extraCpuUsPerCall: lookup.serverCpuUsPerCall - noop.serverCpuUsPerCall,
      indexUsPerLookup: (indexSeconds / indexLookups) * 1e6,
    };
  } finally {
    client.close();
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}
