import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadTrace } from "./mooncake-trace.js";
import {
  APPROXIMATE_ASSUMED_CAPACITY_BLOCKS,
  createApproximatePrefixPolicy,
  createIndexHintsPolicy,
  createLeastLoadedPolicy,
  createRandomPolicy,
  createRoundRobinPolicy,
  type RoutingPolicy,
} from "./routing-policies.js";
import {
  type PolicyContext,
  type RoutingSimulationResult,
  routableRequests,
  simulateRouting,
} from "./routing-simulation.js";
import { NOMINAL_SERVICE_MODEL } from "./simulated-fleet.js";
import { fmt } from "./stats.js";

/**
 * `make simulate`: does routing on the index's hints pay off? Replays the Mooncake conversation
 * trace against simulated fleets under five routing policies and writes `bench/SIMULATION.md`,
 * and the summary table in README.md. Deterministic: trace time, seeded PRNG, no wall clock.
 */

// Run from dist/bench/: the trace, SIMULATION.md and README.md live in the source tree.
const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/** Replicas per fleet. */
const FLEET_SIZES = [8, 32, 128] as const;
/**
 * KV capacity per replica, in 512-token blocks: 128k, 512k and 2M tokens. The trace's reuse is far
 * apart (one cache taking every request needs ~16k blocks to reuse 27% of blocks and ~64k for the
 * trace's 37% ceiling), so a fleet's total capacity decides how much of it routing can catch: from
 * 2k blocks (8 x 256, almost nothing survives) to 512k (128 x 4096, everything does).
 */
const CAPACITIES = [256, 1024, 4096] as const;
/**
 * Both prefix-aware policies skip an overloaded replica (see isOverloaded), so that they differ
 * only in what they know. Without a guard the approximate policy sends every request to one
 * replica: block 0 is in every chain, and the first replica to get it matches it alone.
 * `SIMULATE_OVERLOAD_FACTOR` sets it (a number above 0). @default 2
 */
const OVERLOAD_FACTOR = overloadFactor(process.env.SIMULATE_OVERLOAD_FACTOR);
const RANDOM_SEED = 1;

const POLICIES: readonly ((context: PolicyContext) => RoutingPolicy)[] = [
  () => createRandomPolicy(RANDOM_SEED),
  () => createRoundRobinPolicy(),
  () => createLeastLoadedPolicy(),
  ({ replicas }) => createApproximatePrefixPolicy({ replicas, overloadFactor: OVERLOAD_FACTOR }),
  ({ index, scope, replicaIds }) =>
    createIndexHintsPolicy({ index, scope, replicaIds, overloadFactor: OVERLOAD_FACTOR }),
];

function overloadFactor(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 2;
  const factor = Number(raw);
  if (!(Number.isFinite(factor) && factor > 0)) {
    throw new RangeError(`SIMULATE_OVERLOAD_FACTOR must be a number above 0, got ${raw}`);
  }
  return factor;
}

const trace = loadTrace(repo("bench/data/mooncake-conversation.jsonl"));
const requests = routableRequests(trace);
const results: RoutingSimulationResult[] = [];
const started = performance.now();
for (const replicas of FLEET_SIZES) {
  for (const capacityBlocks of CAPACITIES) {
    for (const createPolicy of POLICIES) {
      const result = simulateRouting({ requests, replicas, capacityBlocks, createPolicy });
      results.push(result);
      console.log(
        `${replicas} replicas x ${capacityBlocks} blocks, ${result.policy}: hit rate ${fmt(result.hitRate * 100)}%, imbalance ${fmt(result.loadImbalance)}`,
      );
    }
  }
}
console.log(`simulated in ${fmt((performance.now() - started) / 1000)} s`);

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
const policyNames = [...new Set(results.map((r) => r.policy))];
const cell = (replicas: number, capacityBlocks: number, policy: string) =>
  results.find(
    (r) => r.replicas === replicas && r.capacityBlocks === capacityBlocks && r.policy === policy,
  ) as RoutingSimulationResult;

/** One row per (fleet, capacity), one column per policy: hit rate, and imbalance in brackets. */
function summaryTable(): string {
  const header = `| replicas x blocks each | ${policyNames.join(" | ")} |`;
  const rule = `|---|${policyNames.map(() => "---").join("|")}|`;
  const rows = FLEET_SIZES.flatMap((replicas) =>
    CAPACITIES.map((capacityBlocks) => {
      const cells = policyNames.map((policy) => {
        const r = cell(replicas, capacityBlocks, policy);
        return `${percent(r.hitRate)} (${r.loadImbalance.toFixed(2)})`;
      });
      return `| ${replicas} x ${fmt(capacityBlocks)} | ${cells.join(" | ")} |`;
    }),
  );
  return [header, rule, ...rows].join("\n");
}

/** Every figure of one fleet size. */
function detailTable(replicas: number): string {
  const rows = CAPACITIES.flatMap((capacityBlocks) =>
    policyNames.map((policy) => {
      const r = cell(replicas, capacityBlocks, policy);
      return `| ${fmt(capacityBlocks)} | ${policy} | ${percent(r.hitRate)} | ${fmt(r.reusedBlocks)} | ${r.loadImbalance.toFixed(2)} | ${r.peakActiveRequests} |`;
    }),
  );
  return [
    `### ${replicas} replicas`,
    "",
    "| blocks per replica | policy | prefix-block hit rate | blocks reused | load imbalance (max/mean requests) | peak requests in flight on one replica |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** Where the index's hints beat the approximate policy, and by how much, from this run. */
function comparison(): string {
  const gaps = FLEET_SIZES.flatMap((replicas) =>
    CAPACITIES.map((capacityBlocks) => ({
      setting: `${replicas} x ${fmt(capacityBlocks)}`,
      points:
        (cell(replicas, capacityBlocks, "index-hints").hitRate -
          cell(replicas, capacityBlocks, "approximate").hitRate) *
        100,
    })),
  ).sort((a, b) => b.points - a.points);
  const best = gaps[0];
  const worst = gaps[gaps.length - 1];
  if (best === undefined || worst === undefined) return "";
  const wins = gaps.filter((gap) => gap.points > 0).length;
  const signed = (points: number) => `${points >= 0 ? "+" : ""}${points.toFixed(1)}`;
  return `Index hints reuse more than the approximate policy in ${wins} of ${gaps.length} settings: from ${signed(best.points)} points (${best.setting}) to ${signed(worst.points)} (${worst.setting}). Against the load-only policies the gap is the whole of the prefix reuse: they reuse little beyond block 0.`;
}

const requestedBlocks = results[0]?.requestedBlocks ?? 0;
const { prefillTokensPerSecond, decodeTokensPerSecond } = NOMINAL_SERVICE_MODEL;
const simulation = `# Routing quality: does the index pay off?

Written by \`make simulate\` (\`bench/simulate.ts\`). Deterministic: the same tables on every run and
every machine (trace time instead of the wall clock, seeded PRNG).

**Workload.** The Mooncake conversation trace (${fmt(trace.length)} requests, one hour,
${fmt(requestedBlocks)} blocks of 512 tokens) in timestamp order, against a fleet of simulated
replicas. Each replica has a KV cache of a fixed number of blocks with LRU eviction; serving a
request stores its prompt's blocks, and its engine publishes what vLLM would into a real index
(\`createCacheIndex\`): the evictions, the request's blocks with its load, and a load update when a
request finishes. A request stays in flight for the prefill of its prompt tokens not already cached
(${fmt(prefillTokensPerSecond)} tokens/s) plus its decode (${fmt(decodeTokensPerSecond)} tokens/s):
about 13 s on average, ~45 requests in flight across the fleet. "Load" is requests in flight.

**Capacities** span the trace's reuse distances: a single cache taking every request needs ~16k
blocks to reuse 27% of blocks and ~64k for the trace's 37% ceiling, so the fleet's total capacity
(from 8 x 256 = 2k blocks to 128 x 4,096 = 512k) decides how much reuse routing can catch.

**Policies.**
- **random** (seeded), **round-robin**, **least-loaded** (fewest requests in flight; ties rotate).
- **approximate**, like the Gateway API inference extension's prefix scorer: it learns only from its
  own decisions, keeping per replica an LRU of the blocks it sent there, capped at its assumed
  capacity (${fmt(APPROXIMATE_ASSUMED_CAPACITY_BLOCKS)} blocks: the extension's 31,250 blocks of 64
  characters per server, ~500k tokens). The longest matched prefix wins; ties and no match go to
  the least loaded.
- **index-hints**: \`LookupRoute\`'s top hint; with no hint, the least loaded.

Both prefix-aware policies fall back to the least loaded when their pick is overloaded: more than
${OVERLOAD_FACTOR}x the fleet's mean requests in flight (the mean floored at 1; \`SIMULATE_OVERLOAD_FACTOR\`
sets the factor, 2 by default), the hinted replica's
load read from the hint's stats. The guard is the same for both so that they differ only in what
they know. Without it the approximate policy sends every request to one replica (load imbalance
equal to the fleet size): block 0 is in every chain, and the first replica sent it matches it alone.

**Prefix-block hit rate** = blocks reused / blocks requested, a block being reused when it is in the
run of leading blocks the chosen replica held when the request arrived (what an engine can skip).
Every request shares block 0, so even random routing reuses ~4%. **Load imbalance** = most requests
sent to one replica / mean per replica.

**Reading the approximate column.** The simulated engines are deterministic LRU caches, so an
approximate policy told the exact capacity would know what each replica holds as well as the index
does. It departs from the truth as it does in production, by not knowing the capacity: it forgets
blocks still held when replicas hold more than it assumes, and sends requests after blocks long
evicted when they hold less. Where the two policies are within a few points, the difference is how
each picks among equal matches rather than what it knows: the index ranks an equal match by
freshness, so a request that matches only a widely shared head block goes to the replica that most
recently confirmed it, and new conversations gather on recently busy replicas; the approximate
policy spreads them over every tied replica by load.

## Summary: hit rate (load imbalance)

${summaryTable()}

${comparison()}

## Every figure

${FLEET_SIZES.map(detailTable).join("\n\n")}
`;
writeFileSync(repo("bench/SIMULATION.md"), simulation);
console.log("wrote bench/SIMULATION.md");

// The README quotes the summary between its simulate markers; rewrite it from this run.
const readmePath = repo("README.md");
const readme = readFileSync(readmePath, "utf8");
const markers = /<!-- simulate:start -->[\s\S]*<!-- simulate:end -->/;
if (markers.test(readme)) {
  writeFileSync(
    readmePath,
    readme.replace(markers, `<!-- simulate:start -->\n${summaryTable()}\n<!-- simulate:end -->`),
  );
  console.log("quoted the summary in README.md");
} else {
  console.log("README.md has no simulate markers; left it alone");
}
