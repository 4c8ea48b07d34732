import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import { runGrpcBenchmark } from "./grpc-bench.js";
import { formatGrpcReplayMarkdown, runGrpcReplayBenchmark } from "./grpc-replay-bench.js";
import { formatKvEventStreamMarkdown, runKvEventStreamBenchmark } from "./kv-event-stream-bench.js";
import { runLookupAllocationBenchmark } from "./lookup-allocation-bench.js";
import { runMemoryBenchmark } from "./memory-bench.js";
import { loadTrace } from "./mooncake-trace.js";
import { formatReplayMarkdown, runReplayBenchmark } from "./replay-bench.js";
import { fmt } from "./stats.js";
import { formatTieMarkdown, runTieBenchmark } from "./tie-bench.js";
import { runWriteBenchmark } from "./write-bench.js";

/**
 * `make bench`: every benchmark of the index, written to bench/RESULTS.md and quoted in README.
 * Knobs: BENCH_ROUNDS (in-process rounds, 5), BENCH_GRPC_ROUNDS (gRPC replay rounds, each a server
 * of its own, one after another: 3), BENCH_RATIO_SERVERS (servers the CPU ratio is the median
 * over: 5), BENCH_HOLDER_BLOCKS (memory workloads' size, 10,000,000), BENCH_GRPC_REPLAY_FRACTION
 * (head of the replay sent over gRPC, 0.25).
 */

// Run from dist/bench/ (make bench): the data and the results live in the source tree.
const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const GRPC_ROUNDS = Number(process.env.BENCH_GRPC_ROUNDS ?? 3);
// Servers differ by a tenth or more in their ratio (see the method in RESULTS), so five.
const RATIO_SERVERS = Number(process.env.BENCH_RATIO_SERVERS ?? 5);
const HOLDER_BLOCKS = Number(process.env.BENCH_HOLDER_BLOCKS ?? 10_000_000);
const GRPC_REPLAY_FRACTION = Number(process.env.BENCH_GRPC_REPLAY_FRACTION ?? 0.25);
const tracePath = repo("bench/data/mooncake-conversation.jsonl");
const trace = loadTrace(tracePath);
const mainScript = fileURLToPath(new URL("../src/main.js", import.meta.url));
const clock = { now: () => performance.now() };

console.log(`memory: three workloads of ${HOLDER_BLOCKS} holder-blocks, each in its own process`);
const memory = runMemoryBenchmark(["mooncake", "shared", "distinct"], HOLDER_BLOCKS);
console.log(memory);

console.log("block writes: 1,000 replicas storing and evicting chains of 32 blocks");
const writes = runWriteBenchmark({
  replicas: 1000,
  chainsPerReplica: 31,
  blocksPerEvent: 32,
  steps: 64,
  rounds: ROUNDS,
});
console.log(writes);
// Engines publish a scheduler step's blocks at a time, often a few: the same steady state in
// batches of 4 blocks shows what the per-batch work costs.
console.log("block writes: the same in batches of 4 blocks");
const smallWrites = runWriteBenchmark({
  replicas: 1000,
  chainsPerReplica: 248,
  blocksPerEvent: 4,
  steps: 512,
  rounds: ROUNDS,
});
console.log(smallWrites);

console.log("KV-event streams: events decoded and applied, from one engine and from 64");
const kvPublisher = fileURLToPath(new URL("./kv-event-publisher.js", import.meta.url));
const kvStreams = [
  await runKvEventStreamBenchmark({
    publisherScript: kvPublisher,
    streams: 1,
    batchesPerStream: 100_000,
    blocksPerBatch: 4,
    rounds: ROUNDS,
  }),
  await runKvEventStreamBenchmark({
    publisherScript: kvPublisher,
    streams: 64,
    batchesPerStream: 2_000,
    blocksPerBatch: 4,
    rounds: ROUNDS,
  }),
];
console.log(formatKvEventStreamMarkdown(kvStreams));

console.log("Mooncake replay in process, 7,000 workers");
const replay = runReplayBenchmark({
  trace,
  rounds: ROUNDS,
  createIndex: () => createCacheIndex({ clock, maxEntries: 10_000_000, ttlMs: 86_400_000 }),
});
console.log(formatReplayMarkdown(replay));

console.log("ties: 7,000 replicas holding one block at one freshness");
const ties = runTieBenchmark({ replicas: 7_000, lookupsPerRound: 2_000, rounds: ROUNDS });
console.log(formatTieMarkdown(ties));
const oneMsTie = ties.find((t) => t.name.startsWith("confirmed in one millisecond, no stats"));

// The targets are judged with one call in flight, as one gateway worker sends its lookups: the
// figure a request sees. With 16 in flight the same replay shows the most the pair of processes
// can push through these two cores, with the queueing that costs.
console.log("Mooncake replay over gRPC, 7,000 workers, one call in flight");
const replayClient = fileURLToPath(new URL("./grpc-replay-client.js", import.meta.url));
const grpcReplay = await runGrpcReplayBenchmark({
  mainScript,
  clientScript: replayClient,
  tracePath,
  rounds: GRPC_ROUNDS,
  fraction: GRPC_REPLAY_FRACTION,
  concurrency: 1,
});
console.log(formatGrpcReplayMarkdown(grpcReplay));
console.log("Mooncake replay over gRPC, 16 calls in flight");
const grpcReplaySaturated = await runGrpcReplayBenchmark({
  mainScript,
  clientScript: replayClient,
  tracePath,
  rounds: 1,
  fraction: GRPC_REPLAY_FRACTION,
  concurrency: 16,
});
console.log(formatGrpcReplayMarkdown(grpcReplaySaturated));

console.log("over gRPC: LookupRoute against a no-op RPC on the same server");
const grpc = await runGrpcBenchmark({
  mainScript,
  trace,
  replicas: 64,
  servers: RATIO_SERVERS,
  roundsPerServer: 2,
  callsPerPhase: 20_000,
  concurrency: 16,
});
console.log(grpc);

console.log("LookupRoute's handler in process: bytes allocated per call");
const allocation = await runLookupAllocationBenchmark(trace, 64);
console.log(allocation);

const byWorkload = (name: string) => memory.find((m) => m.workload === name);
const mooncakeMemory = byWorkload("mooncake");
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");
const cpu = cpus()[0]?.model ?? "unknown CPU";
const results = `# Benchmark results

Written by \`make bench\` (\`BENCH_ROUNDS=${ROUNDS}\`, \`BENCH_GRPC_ROUNDS=${GRPC_ROUNDS}\`, \`BENCH_RATIO_SERVERS=${RATIO_SERVERS}\`): figures are
medians over rounds, after an untimed warm-up. Machine: ${cpus().length} x ${cpu},
${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Engine: \`createCompactCacheIndex\`.
The workloads come from the Mooncake conversation trace (${trace.length} requests, 512-token blocks,
\`bench/data/\`).

## Against the targets

| figure | target (must) | measured | |
|---|---|---|---|
| bytes per holder-block at ${fmt(HOLDER_BLOCKS)} holder-blocks, Mooncake fleet | <= 40 | ${fmt(mooncakeMemory?.bytesPerHolderBlock ?? Number.NaN, 4)} | ${verdict((mooncakeMemory?.bytesPerHolderBlock ?? 99) <= 40)} |
| in-process lookup p50 / p99, Mooncake chains, 7,000 workers | <= 5 µs / 50 µs | ${fmt(replay.lookupP50Us)} µs / ${fmt(replay.lookupP99Us)} µs | ${verdict(replay.lookupP50Us <= 5 && replay.lookupP99Us <= 50)} |
| block writes (adds + removes) per second, one core, batches of 32 (median of ${writes.rounds} rounds; their range) | >= 2M | ${fmt(writes.blockWritesPerSecond)} (${fmt(writes.blockWritesRange[0])} to ${fmt(writes.blockWritesRange[1])}) | ${verdict(writes.blockWritesPerSecond >= 2e6)} |
| Mooncake replay in process, block ops/s; lookup p99 | >= 1M; <= 1 ms | ${fmt(replay.blockOpsPerSecond)}; ${fmt(replay.lookupP99Us)} µs | ${verdict(replay.blockOpsPerSecond >= 1e6 && replay.lookupP99Us <= 1000)} |
| Mooncake replay over gRPC (one call in flight), block ops/s; lookup p99 | >= 30k; <= 3.2 ms | ${fmt(grpcReplay.blockOpsPerSecond)}; ${fmt(grpcReplay.lookupP99Us / 1000)} ms | ${verdict(grpcReplay.blockOpsPerSecond >= 30e3 && grpcReplay.lookupP99Us <= 3200)} |
| \`LookupRoute\` server CPU per call / no-op's, ${grpc.concurrency} calls in flight; one in flight (medians of ${grpc.servers} servers; their ranges) | <= 1.3x | ${fmt(grpc.cpuRatio)}x (${fmt(grpc.cpuRatioRange[0])}x to ${fmt(grpc.cpuRatioRange[1])}x); ${fmt(grpc.serialCpuRatio)}x (${fmt(grpc.serialCpuRatioRange[0])}x to ${fmt(grpc.serialCpuRatioRange[1])}x) | ${verdict(grpc.cpuRatio <= 1.3 && grpc.serialCpuRatio <= 1.3)} |

Ops are counted two ways. *Block ops* are the blocks lookups name (every hash of a chain, as
Dynamo's benchmark counts them, although a lookup stops reading at the first block nobody holds)
plus the blocks stored or removed: the unit of the field's throughput figures. *Logical ops* are
lookups plus store and remove events, one each whatever their size: in process
${fmt(replay.opsPerSecond)}/s, over gRPC ${fmt(grpcReplay.opsPerSecond)}/s (see the replay tables).

## Memory

Heap plus array buffers after GC, minus the empty index's, divided by holder-blocks; each workload
in a fresh process (\`bench/memory-probe.ts\`). Then every replica is cleared and the index filled
again: memory is reused, not grown.

| workload | holder-blocks | blocks | replicas | bytes per holder-block | of which typed arrays | kept after clearing all | after refilling |
|---|---|---|---|---|---|---|---|
${memory
  .map(
    (m) =>
      `| ${m.workload} | ${fmt(m.holderBlocks)} | ${fmt(m.blocks)} | ${fmt(m.replicas)} | **${fmt(m.bytesPerHolderBlock, 4)}** | ${fmt(m.arrayBytesPerHolderBlock)} | ${fmt(m.retainedAfterClearBytes / 2 ** 20)} MiB | ${fmt(m.refillBytesPerHolderBlock)} |`,
  )
  .join("\n")}

- *mooncake*: the trace's chains, each request stored on one of 7,000 workers at random, the trace
  repeated with block ids offset per copy until full (${fmt((mooncakeMemory?.holderBlocks ?? 0) / (mooncakeMemory?.blocks ?? 1))} holders per block).
- *shared*: 1,000 replicas, every block held by 10 of them.
- *distinct*: no sharing at all, every block held by one replica (the most bytes per holder-block
  of the three: each block's record and table slot serve one holder).

A holder-block costs 20 bytes (a confirmation tick, its block and three 32-bit links); a block costs 20 bytes
plus about 6 bytes of hash table, shared by its holders. Pages freed by clearing are kept for reuse.
The probe lets a table resize in progress finish before it measures. Not measured here: holders
live in 32-slot chunks per replica, and a chunk is returned only once all its slots are free, so a
replica that loses most of its entries but not whole chunks keeps up to 32 times the memory they
need until it stores again (its new entries reuse those slots first). Under steady churn freed slots
are refilled; the slack shows when a replica loses most of its entries and then stores little.

## Block writes

${fmt(writes.replicas)} replicas each publish batches that store a new chain of ${writes.blocksPerEvent} blocks and evict
their oldest, at a steady ${fmt(writes.steadyHolderBlocks)} holder-blocks: **${fmt(writes.blockWritesPerSecond)} block writes/s** (the figure
judged above; a Mooncake chain is 24 blocks on average). The same in batches of ${smallWrites.blocksPerEvent} blocks, as an
engine's scheduler step often publishes, at ${fmt(smallWrites.steadyHolderBlocks)} holder-blocks: ${fmt(smallWrites.blockWritesPerSecond)} block writes/s.

## Engines' KV-event streams

A publisher process sends vLLM-layout batches (\`[ts, [BlockStored, BlockRemoved], rank]\`, 4 blocks
of 16 tokens each way, fresh hashes) over loopback TCP; the sidecar's stream code subscribes (one
ZMQ SUB per engine), checks the framing, decodes, orders by seq and applies to the index through
the same sink the sidecar uses. The subscriber's event loop is held while the publisher sends, so
the figure is how fast it drains a backlog on one core. See \`bench/kv-event-stream-bench.ts\`.

${formatKvEventStreamMarkdown(kvStreams)}

Most of the cost is zeromq's \`receive()\` per message, not decoding or applying the batch (seen in a
CPU profile of this benchmark; not measured separately here).

## Mooncake replay (Dynamo's method)

Each request is a lookup of its chain, then one batch of events for the worker it is routed to (a
seeded random worker, as Dynamo's benchmark partitions the trace): removals when the worker's LRU
cache is full, then stores of its new blocks. See \`bench/replay-bench.ts\`.

${formatReplayMarkdown(replay)}

${formatGrpcReplayMarkdown(grpcReplay)}

The same replay with 16 calls in flight (one round): the most the client and server push through
the two cores together, paid for in queueing.

${formatGrpcReplayMarkdown(grpcReplaySaturated)}

Over gRPC the client is one process on bare HTTP/2 (\`bench/h2-unary-client.ts\`: about what a
gateway's client does per call) and shares the machine's two cores with the server.

## Ties: thousands of holders of one block, equally fresh

When the freshest holders of a block outnumber the hints, the hints are the tie's winners (lower
load, then replica id). A lookup reads the block's list, freshest first; past a run of about
sqrt(2 x hints x replicas) tied holders it also reads the scheme's replicas in tie order, which ends
at the first replica that loses the tie. Entries kept alive by KV-event streams tie in groups: the
sweeper confirms every entry it renews in one sweep at that sweep's millisecond. See
\`bench/tie-bench.ts\` (each lookup names block 0 and a block nobody holds).

${formatTieMarkdown(ties)}

In the renewal rows the replicas renewed together are also neighbours in id order (they first
reported one after another), so the tie's winners sit far down the tie order and the list's own
reading ends first: there the tie order costs a few dozen steps on top of the list's.

## \`LookupRoute\` against a no-op RPC (server in its own process, ${grpc.concurrency} calls in flight)

| RPC | calls/s | p50 | p99 | server CPU per call |
|---|---|---|---|---|
| \`LookupRoute\` (a trace chain each) | ${fmt(grpc.lookup.callsPerSecond)} | ${fmt(grpc.lookup.p50Us)} µs | ${fmt(grpc.lookup.p99Us)} µs | ${fmt(grpc.lookup.serverCpuUsPerCall)} µs |
| \`grpc.health.v1.Health/Check\` (no-op) | ${fmt(grpc.noop.callsPerSecond)} | ${fmt(grpc.noop.p50Us)} µs | ${fmt(grpc.noop.p99Us)} µs | ${fmt(grpc.noop.serverCpuUsPerCall)} µs |

One call in flight (the latency one gateway request sees):

| RPC | p50 | p99 | server CPU per call |
|---|---|---|---|
| \`LookupRoute\` | ${fmt(grpc.lookupSerial.p50Us)} µs | ${fmt(grpc.lookupSerial.p99Us)} µs | ${fmt(grpc.lookupSerial.serverCpuUsPerCall)} µs |
| no-op | ${fmt(grpc.noopSerial.p50Us)} µs | ${fmt(grpc.noopSerial.p99Us)} µs | ${fmt(grpc.noopSerial.serverCpuUsPerCall)} µs |

**Ratios, LookupRoute / no-op, same server and run**: server CPU per call
**${fmt(grpc.cpuRatio)}x** with ${grpc.concurrency} calls in flight (${fmt(grpc.cpuRatioRange[0])}x to ${fmt(grpc.cpuRatioRange[1])}x over the servers)
and **${fmt(grpc.serialCpuRatio)}x** with one (${fmt(grpc.serialCpuRatioRange[0])}x to ${fmt(grpc.serialCpuRatioRange[1])}x); the target is judged on both, as the
issue names no concurrency. p50 latency: ${fmt(grpc.p50Ratio)}x.

Where the difference goes, with ${grpc.concurrency} calls in flight (medians over servers): a lookup
costs ${fmt(grpc.extraCpuUsPerCall)} µs of server CPU more than the no-op, and the index's own lookup took
${fmt(grpc.indexUsPerLookup)} µs of it (the sidecar's lookup latency histogram, read from \`/metrics\` around
the loaded lookup phases). The rest is decoding the request, the service, encoding the answer,
and whatever more the gRPC stack's own work for the call costs the server than the no-op's does.

What the sidecar's own code allocates per \`LookupRoute\` call (the handler grpc-js calls: decode,
service, instrumented index, encode; in this process, on the same chains and fleet; V8's sampling
heap profiler over ${fmt(allocation.calls)} calls, \`bench/lookup-allocation-bench.ts\`):
**${fmt(allocation.reusingBytesPerCall)} bytes** as the gRPC server runs it, reusing one response, against
${fmt(allocation.freshBytesPerCall)} bytes when every response is made anew (as for Connect). grpc-js's own
objects for the call come on top, for the no-op as for the lookup.

Method: ${grpc.servers} servers, one after another, each loaded with the trace's ${fmt(grpc.replicas)}-replica
fleet; on each, ${grpc.roundsPerServer} rounds of a LookupRoute phase and a no-op phase (which goes first
alternates) of ${fmt(grpc.callsPerPhase)} calls at ${grpc.concurrency} in flight, then ${fmt(grpc.serialCallsPerPhase)} at one. A server's ratio
is its lookup phases' CPU over its no-op phases'; the figure is the median over servers. The
tables give, for each figure, the median over servers of each server's mean over its phases; the
lookup's extra CPU above is the median of each server's own difference, so it need not equal the
difference of the two medians in the table. Server CPU (all its threads, from \`/proc/<pid>/task/*/schedstat\`, in
nanoseconds) is read around each phase. On this host a server's ratio holds steady from phase to
phase but moves from one server process to the next (by a tenth or more: the range above), so a
single server's figure decides nothing. The median over servers moves too: over the committed runs
of \`make bench\` from 2026-12-01 to 2026-12-04 it ranged from 1.26x to 1.45x, partly at the same code,
as the host's speed moved the no-op's cost (from 44.7 to 57.4 µs); a faster host can make the ratio
worse, as the lookup's extra work shrinks less than the no-op's. So a median near 1.3x decides
nothing, and the extra µs per call above is the steadier figure of the sidecar's own cost.
Absolute figures move with the machine's load.
`;
writeFileSync(repo("bench/RESULTS.md"), results);
console.log("wrote bench/RESULTS.md");

// The README quotes the headline figures between its bench markers; rewrite them from this run.
const summary = `| figure | value |
|---|---|
| bytes per holder-block, about ${fmt(HOLDER_BLOCKS)} holder-blocks (Mooncake fleet; no sharing) | ${fmt(mooncakeMemory?.bytesPerHolderBlock ?? Number.NaN, 4)}; ${fmt(byWorkload("distinct")?.bytesPerHolderBlock ?? Number.NaN)} |
| in process: lookup p50 / p99, 7,000 workers | ${fmt(replay.lookupP50Us)} µs / ${fmt(replay.lookupP99Us)} µs |
| in process: block writes/s, one core (batches of ${writes.blocksPerEvent}; of ${smallWrites.blocksPerEvent}) | ${fmt(writes.blockWritesPerSecond)}; ${fmt(smallWrites.blockWritesPerSecond)} |
| KV events decoded and applied per second: one engine stream; 64 streams | ${fmt(kvStreams[0]?.eventsPerSecond ?? Number.NaN)}; ${fmt(kvStreams[1]?.eventsPerSecond ?? Number.NaN)} |
| in process: lookup p50 / p99, 7,000 holders of one block confirmed in one millisecond | ${fmt(oneMsTie?.lookupP50Us ?? Number.NaN)} µs / ${fmt(oneMsTie?.lookupP99Us ?? Number.NaN)} µs |
| Mooncake replay in process: block ops/s (logical ops/s) | ${fmt(replay.blockOpsPerSecond)} (${fmt(replay.opsPerSecond)}) |
| Mooncake replay over gRPC (first 25%), one call in flight: block ops/s (logical ops/s); lookup p99 | ${fmt(grpcReplay.blockOpsPerSecond)} (${fmt(grpcReplay.opsPerSecond)}); ${fmt(grpcReplay.lookupP99Us / 1000)} ms |
| gRPC \`LookupRoute\` p50 / p99, one call in flight (no-op: ${fmt(grpc.noopSerial.p50Us)} µs / ${fmt(grpc.noopSerial.p99Us)} µs) | ${fmt(grpc.lookupSerial.p50Us)} µs / ${fmt(grpc.lookupSerial.p99Us)} µs |
| **server CPU per call, \`LookupRoute\` / no-op**, ${grpc.concurrency} calls in flight, median of ${grpc.servers} servers (their range; one call in flight); target at most 1.3x | **${fmt(grpc.cpuRatio)}x** (${fmt(grpc.cpuRatioRange[0])}x to ${fmt(grpc.cpuRatioRange[1])}x; ${fmt(grpc.serialCpuRatio)}x): ${grpc.cpuRatio <= 1.3 && grpc.serialCpuRatio <= 1.3 ? "met" : "**not met**"} |`;
const readmePath = repo("README.md");
const readme = readFileSync(readmePath, "utf8");
const quoted = readme.replace(
  /<!-- bench:start -->[\s\S]*<!-- bench:end -->/,
  `<!-- bench:start -->\n${summary}\n<!-- bench:end -->`,
);
writeFileSync(readmePath, quoted);
console.log("quoted the figures in README.md");
