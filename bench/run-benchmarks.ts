import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import { runGrpcBenchmark } from "./grpc-bench.js";
import { runInProcessBenchmark } from "./in-process-bench.js";
import { loadTrace } from "./mooncake-trace.js";
import { fmt } from "./stats.js";

// Run from dist/bench/ (make bench): the data and the results live in the source tree.
const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REPLICAS = 64;

const trace = loadTrace(repo("bench/data/mooncake-conversation.jsonl"));
const clock = { now: () => performance.now() };

console.log(`in process: ${trace.length} requests over ${REPLICAS} replicas, ${ROUNDS} rounds`);
const inProcess = runInProcessBenchmark({
  trace,
  replicas: REPLICAS,
  rounds: ROUNDS,
  createIndex: () => createCacheIndex({ clock, maxEntries: 10_000_000, ttlMs: 3_600_000 }),
});
console.log(inProcess);

console.log("over gRPC: LookupRoute against a no-op RPC on the same server");
const grpc = await runGrpcBenchmark({
  mainScript: fileURLToPath(new URL("../src/main.js", import.meta.url)),
  trace,
  replicas: REPLICAS,
  rounds: ROUNDS,
  callsPerPhase: 10_000,
  concurrency: 16,
});
console.log(grpc);

const cpu = cpus()[0]?.model ?? "unknown CPU";
const results = `# Benchmark results

Written by \`make bench\` (\`BENCH_ROUNDS=${ROUNDS}\`); every figure is the median of ${ROUNDS} rounds,
after an untimed warm-up. Machine: ${cpus().length} x ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB,
Node ${process.version}. Workload: the Mooncake conversation trace (${trace.length} requests, 512-token
blocks, \`bench/data/\`), request *i* reported by replica *i* mod ${REPLICAS}.

## In process (engine: \`createMapCacheIndex\`)

| figure | value |
|---|---|
| holder entries after ingesting the trace | ${fmt(inProcess.holderEntries)} |
| ingested prefixes per second (\`report\`) | ${fmt(inProcess.ingestedPrefixesPerSecond)} |
| lookups per second (each a trace request's whole chain) | ${fmt(inProcess.lookupsPerSecond)} |
| lookup latency p50 / p99 | ${fmt(inProcess.lookupP50Us)} µs / ${fmt(inProcess.lookupP99Us)} µs |
| mean matched blocks of the top hint | ${fmt(inProcess.meanMatchedBlocks)} |

## Over gRPC (server in its own process, client in another, ${grpc.concurrency} calls in flight)

| RPC | calls/s | p50 | p99 | server CPU per call |
|---|---|---|---|---|
| \`LookupRoute\` (a trace chain each) | ${fmt(grpc.lookup.callsPerSecond)} | ${fmt(grpc.lookup.p50Us)} µs | ${fmt(grpc.lookup.p99Us)} µs | ${fmt(grpc.lookup.serverCpuUsPerCall)} µs |
| \`grpc.health.v1.Health/Check\` (no-op) | ${fmt(grpc.noop.callsPerSecond)} | ${fmt(grpc.noop.p50Us)} µs | ${fmt(grpc.noop.p99Us)} µs | ${fmt(grpc.noop.serverCpuUsPerCall)} µs |

One call in flight (the latency one gateway request sees):

| RPC | p50 | p99 |
|---|---|---|
| \`LookupRoute\` | ${fmt(grpc.lookupSerial.p50Us)} µs | ${fmt(grpc.lookupSerial.p99Us)} µs |
| no-op | ${fmt(grpc.noopSerial.p50Us)} µs | ${fmt(grpc.noopSerial.p99Us)} µs |

**Ratios, LookupRoute / no-op, same server and run** (median of per-round ratios):
server CPU per call **${fmt(grpc.cpuRatio)}x**, p50 latency **${fmt(grpc.p50Ratio)}x**.

Server CPU is read from \`/proc/<pid>/stat\` (10 ms ticks) around each phase of ${fmt(grpc.callsPerPhase)} calls.
Absolute figures move with the machine's load; the ratios are the comparable figures. The client
runs on the same two cores as the server, so calls/s and latencies over gRPC are bounded by the
client as much as by the server; server CPU per call is not.

Where the server's time goes (\`BENCH_SERVER_NODE_ARGS=--cpu-prof make bench\` profiles the server):
the Map engine's walk of the chain (each of ~24 blocks a lookup in a Map of ~180k string keys, then
one per replica still matching), garbage collection of a heap of per-entry objects, and protobuf-es's
reflection-based encoding of the response. A compact typed-array engine removes the first two.
`;
writeFileSync(repo("bench/RESULTS.md"), results);
console.log("wrote bench/RESULTS.md");

// The README quotes the headline figures between its bench markers; rewrite them from this run.
const summary = `| figure (median of ${ROUNDS} rounds) | value |
|---|---|
| in process: lookups/s, p50 / p99 | ${fmt(inProcess.lookupsPerSecond)}/s, ${fmt(inProcess.lookupP50Us)} µs / ${fmt(inProcess.lookupP99Us)} µs |
| in process: ingested prefixes/s | ${fmt(inProcess.ingestedPrefixesPerSecond)}/s |
| gRPC \`LookupRoute\`: p50 / p99, one call in flight | ${fmt(grpc.lookupSerial.p50Us)} µs / ${fmt(grpc.lookupSerial.p99Us)} µs |
| gRPC no-op (\`Health/Check\`): p50 / p99, one call in flight | ${fmt(grpc.noopSerial.p50Us)} µs / ${fmt(grpc.noopSerial.p99Us)} µs |
| gRPC \`LookupRoute\` calls/s (${grpc.concurrency} in flight, client on the same 2 cores) | ${fmt(grpc.lookup.callsPerSecond)}/s (no-op: ${fmt(grpc.noop.callsPerSecond)}/s) |
| **server CPU per call, \`LookupRoute\` / no-op** | **${fmt(grpc.cpuRatio)}x** (${fmt(grpc.lookup.serverCpuUsPerCall)} µs / ${fmt(grpc.noop.serverCpuUsPerCall)} µs) |`;
const readmePath = repo("README.md");
const readme = readFileSync(readmePath, "utf8");
const quoted = readme.replace(
  /<!-- bench:start -->[\s\S]*<!-- bench:end -->/,
  `<!-- bench:start -->\n${summary}\n<!-- bench:end -->`,
);
writeFileSync(readmePath, quoted);
console.log("quoted the figures in README.md");
