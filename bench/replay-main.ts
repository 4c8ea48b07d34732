import { fileURLToPath } from "node:url";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import { formatGrpcReplayMarkdown, runGrpcReplayBenchmark } from "./grpc-replay-bench.js";
import { loadTrace } from "./mooncake-trace.js";
import {
  DEFAULT_REPLAY_CAPACITY_BLOCKS,
  DEFAULT_REPLAY_SEED,
  DEFAULT_REPLAY_TRACE_COPIES,
  DEFAULT_REPLAY_WORKERS,
  formatReplayMarkdown,
  runReplayBenchmark,
} from "./replay-bench.js";

/**
 * Runs only the Mooncake replay benchmark and prints its tables:
 * `npx tsc -p tsconfig.json && node dist/bench/replay-main.js`. Knobs (environment):
 * - `REPLAY`: `in-process`, `grpc` or `both` (default `both`);
 * - `WORKERS` (7000), `CAPACITY_BLOCKS` (64), `TRACE_COPIES` (4), `SEED` (42);
 * - `FRACTION`: replay only this head fraction of the duplicated trace (1);
 * - `ROUNDS`: in-process rounds (5); `GRPC_ROUNDS`: gRPC rounds, a server each (3);
 * - `CONCURRENCY`: gRPC calls in flight (16).
 */

// Run from dist/bench/: the data lives in the source tree.
const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const knob = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be > 0, got ${raw}`);
  return value;
};

const mode = process.env.REPLAY ?? "both";
const tracePath = repo("bench/data/mooncake-conversation.jsonl");
const settings = {
  workers: knob("WORKERS", DEFAULT_REPLAY_WORKERS),
  capacityBlocks: knob("CAPACITY_BLOCKS", DEFAULT_REPLAY_CAPACITY_BLOCKS),
  traceCopies: knob("TRACE_COPIES", DEFAULT_REPLAY_TRACE_COPIES),
  seed: knob("SEED", DEFAULT_REPLAY_SEED),
  fraction: Math.min(1, knob("FRACTION", 1)),
};
console.log(`Mooncake replay: ${JSON.stringify(settings)}`);

if (mode === "in-process" || mode === "both") {
  const clock = { now: () => performance.now() };
  // Nothing may leave the index but the replay's own remove events: a cap above every worker's
  // full cache, and a TTL far beyond the replay.
  const maxEntries = Math.max(10_000_000, 2 * settings.workers * settings.capacityBlocks);
  const result = runReplayBenchmark({
    ...settings,
    trace: loadTrace(tracePath),
    rounds: knob("ROUNDS", 5),
    createIndex: () => createCacheIndex({ clock, maxEntries, ttlMs: 86_400_000 }),
  });
  console.log(`\n${formatReplayMarkdown(result)}\n`);
}

if (mode === "grpc" || mode === "both") {
  const result = await runGrpcReplayBenchmark({
    ...settings,
    mainScript: fileURLToPath(new URL("../src/main.js", import.meta.url)),
    clientScript: fileURLToPath(new URL("./grpc-replay-client.js", import.meta.url)),
    tracePath,
    rounds: knob("GRPC_ROUNDS", 3),
    concurrency: knob("CONCURRENCY", 16),
  });
  console.log(`\n${formatGrpcReplayMarkdown(result)}\n`);
}
