import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEFAULT_TTL_MS } from "../src/core/cache-index-options.js";
import { DEFAULT_LIVENESS_WINDOW_MS } from "../src/kv-stream/kv-event-stream.js";
import { DEFAULT_SWEEP_INTERVAL_MS } from "../src/sweeper.js";
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
 * trace against simulated fleets under seven routing policies and writes `bench/SIMULATION.md`,
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
 * Every prefix-aware policy skips an overloaded replica (see isOverloaded), by the same rule.
 * Without a guard the approximate policy sends every request to one replica: block 0 is in every
 * chain, and the first replica to get it matches it alone. `SIMULATE_OVERLOAD_FACTOR` sets it (a
 * number above 0). @default 2
 */
const OVERLOAD_FACTOR = overloadFactor(process.env.SIMULATE_OVERLOAD_FACTOR);
const RANDOM_SEED = 1;
/** The approximate policy told each replica's true capacity. */
const EXACT_APPROXIMATE = "approximate, exact capacity";

const POLICIES: readonly ((context: PolicyContext) => RoutingPolicy)[] = [
  () => createRandomPolicy(RANDOM_SEED),
  () => createRoundRobinPolicy(),
  () => createLeastLoadedPolicy(),
  ({ replicas }) => createApproximatePrefixPolicy({ replicas, overloadFactor: OVERLOAD_FACTOR }),
  ({ replicas, capacityBlocks }) =>
    createApproximatePrefixPolicy({
      replicas,
      assumedCapacityBlocks: capacityBlocks,
      overloadFactor: OVERLOAD_FACTOR,
      name: EXACT_APPROXIMATE,
    }),
  ({ index, scope, replicaIds }) =>
    createIndexHintsPolicy({ index, scope, replicaIds, overloadFactor: OVERLOAD_FACTOR }),
  ({ index, scope, replicaIds }) =>
    createIndexHintsPolicy({
      index,
      scope,
      replicaIds,
      overloadFactor: OVERLOAD_FACTOR,
      tiesByLoad: true,
    }),
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

/** Gaps below this many points of hit rate are reported as even. */
const EVEN_POINTS = 0.1;

/** How one policy's hit rate compares with another's over every setting, from this run. */
function gapsBetween(subject: string, policy: string): string {
  const gaps = FLEET_SIZES.flatMap((replicas) =>
    CAPACITIES.map((capacityBlocks) => ({
      setting: `${replicas} x ${fmt(capacityBlocks)}`,
      points:
        (cell(replicas, capacityBlocks, subject).hitRate -
          cell(replicas, capacityBlocks, policy).hitRate) *
        100,
    })),
  ).sort((a, b) => b.points - a.points);
  const best = gaps[0];
  const worst = gaps[gaps.length - 1];
  if (best === undefined || worst === undefined) return "";
  const count = (keep: (points: number) => boolean) => gaps.filter((g) => keep(g.points)).length;
  const more = count((points) => points >= EVEN_POINTS);
  const less = count((points) => points <= -EVEN_POINTS);
  const signed = (points: number) => `${points >= 0 ? "+" : ""}${points.toFixed(1)}`;
  return `${subject[0]?.toUpperCase()}${subject.slice(1)} against ${policy}: more reuse in ${more} of ${gaps.length} settings, less in ${less} (gaps under ${EVEN_POINTS} points count as even), from ${signed(best.points)} points (${best.setting}) to ${signed(worst.points)} (${worst.setting}).`;
}

/** The comparisons the summary table supports, worked out from this run. */
function comparison(): string {
  const loadOnly = results.filter((r) =>
    ["random", "round-robin", "least-loaded"].includes(r.policy),
  );
  const rates = loadOnly.map((r) => r.hitRate);
  const blockZero = requestedBlocks === 0 ? 0 : trace.length / requestedBlocks;
  return [
    gapsBetween("index-hints", "approximate"),
    gapsBetween("index-hints", EXACT_APPROXIMATE),
    gapsBetween(EXACT_APPROXIMATE, "approximate"),
    `The load-only policies reuse ${percent(Math.min(...rates))} to ${percent(Math.max(...rates))}; block 0 alone is ${percent(blockZero)} of the blocks requested.`,
  ].join(" ");
}

const requestedBlocks = results[0]?.requestedBlocks ?? 0;
const { prefillTokensPerSecond, decodeTokensPerSecond } = NOMINAL_SERVICE_MODEL;
const simulation = `# Routing quality: does the index pay off?

Written by \`make simulate\` (\`bench/simulate.ts\`). Deterministic: the same tables on every run and
every machine (trace time instead of the wall clock, seeded PRNG).

**Workload.** The Mooncake conversation trace (${fmt(trace.length)} requests, one hour,
${fmt(requestedBlocks)} blocks of 512 tokens) in timestamp order, against a fleet of simulated
replicas. Each replica has a KV cache of a fixed number of blocks with LRU eviction; serving a
request stores its prompt's blocks. Its engine feeds a real index (\`createCacheIndex\`) what vLLM's
KV events carry: the blocks it evicted and the blocks it stored, with its load (a cache hit publishes
nothing), and a load update when a request finishes. Every engine's event stream stays connected,
so, as in the sidecar with its defaults, the index keeps each replica's entries alive past the TTL
(${fmt(DEFAULT_TTL_MS / 1000)} s; liveness window ${fmt(DEFAULT_LIVENESS_WINDOW_MS / 1000)} s) and its
sweeps (every ${fmt(DEFAULT_SWEEP_INTERVAL_MS / 1000)} s) confirm them again as they reach the TTL.
A request stays in flight for the prefill of its prompt tokens not already cached
(${fmt(prefillTokensPerSecond)} tokens/s) plus its decode (${fmt(decodeTokensPerSecond)} tokens/s):
about 13 s on average, ~45 requests in flight across the fleet. "Load" is requests in flight; it
costs nothing here (no batching or queueing is modelled), so the imbalance column is the only price
a policy pays for gathering requests.

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
- **${EXACT_APPROXIMATE}**: the same policy told each replica's true capacity, as a scorer sized
  from the engines' reported block counts could be. Here that makes it exact: the simulated caches
  are plain LRU, nothing else routes to them and no engine restarts, so what it sent is what they
  hold. Production departs from it in just those ways.
- **index-hints**: \`LookupRoute\`'s top hint; with no hint, the least loaded.
- **index-hints, ties by load**: the same lookup asking for up to 64 hints (the most a lookup
  returns); of those matching as many tokens as the top one, the least loaded (the gateway's own
  count, ties rotating). It breaks the index's ties as the approximate policies do, which a
  gateway can do with what every hint carries, except that with more than 64 tied replicas it sees
  only the 64 freshest.

The prefix-aware policies fall back to the least loaded when their pick is overloaded: more than
${OVERLOAD_FACTOR}x the fleet's mean requests in flight, the mean floored at 1 (so on a fleet with
fewer requests in flight than replicas, more than ${OVERLOAD_FACTOR} requests); \`SIMULATE_OVERLOAD_FACTOR\`
sets the factor, 2 by default. The hinted replica's load is read from the hint's stats. Without the
guard the approximate policy sends every request to one replica (load imbalance equal to the fleet
size): block 0 is in every chain, and the first replica sent it matches it alone.

**Prefix-block hit rate** = blocks reused / blocks requested, a block being reused when it is in the
run of leading blocks the chosen replica held when the request arrived (what an engine can skip).
Every request shares block 0, so even random routing reuses ~4%. **Load imbalance** = most requests
sent to one replica / mean per replica.

**Reading the table.** The approximate policy's belief departs from the truth wherever its
${fmt(APPROXIMATE_ASSUMED_CAPACITY_BLOCKS)}-block guess is wrong: it forgets blocks that larger
caches still hold, and chases blocks that smaller ones have evicted. The exact-capacity column is
the same policy without that error. It is not ahead everywhere: a wrong belief also changes which
ties there are, and so where load goes, which can pay off by chance. The index knows the truth
without being told the capacity. Where
index hints and the exact approximate policy differ, the cause is how each picks among equal
matches, not what it knows (both know exactly what every replica holds). The index ranks equal
matches by freshness, then load, then replica id (in string order; the ids here are \`replica-0\`,
\`replica-1\`, and so on, as a StatefulSet names its pods, and other names move the imbalance). Most
requests match only the shared head block, so they go to the replica whose copy of it was
confirmed last (stored, or renewed by a sweep), and new conversations gather on a few replicas
until the overload guard moves them. The approximate policies spread ties over every tied replica
by load, and so does the last column, with the index's knowledge: its hit rates track the exact
approximate policy's, as both know the truth and break ties alike (up to its 64 hints). Which tie
order does better depends on the fleet: each wins somewhere.

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
