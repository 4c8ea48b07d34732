import { createCacheIndex } from "../src/core/create-cache-index.js";
import { fmt, median, quantile } from "./stats.js";

/**
 * Lookups when thousands of replicas hold a block at the same freshness, so that the hints are
 * decided by the tie-break (lower load, then replica id): every one confirmed in one millisecond,
 * or kept alive by their KV-event streams and renewed by the sweeper, which confirms every entry
 * it renews in one sweep at that sweep's millisecond. Every replica holds block 0 and a block of
 * its own; each lookup asks for block 0 and a block nobody holds, as most Mooncake requests match
 * only the head.
 */
export interface TieScenario {
  readonly name: string;
  readonly replicas: number;
  /** Replicas whose block-0 entry is as fresh as the freshest one's, at the lookups. */
  readonly tiedHolders: number;
  readonly lookupP50Us: number;
  readonly lookupP99Us: number;
}

export interface TieBenchOptions {
  readonly replicas: number;
  readonly lookupsPerRound: number;
  readonly rounds: number;
}

const SCOPE = { tenant: "bench", model: "ties", hashScheme: "bench" } as const;
const SWEEP_INTERVAL_MS = 5_000;
const RENEWAL_TTL_MS = 60_000;

function hashOf(n: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n));
  return bytes;
}

interface Setup {
  readonly name: string;
  /** Milliseconds between the replicas' reports. */
  readonly spacingMs: (replicas: number) => number;
  readonly loads: boolean;
  /** Kept alive and renewed by 5-s sweeps over two TTLs, with this TTL. */
  readonly renewedWithTtlMs?: number;
  /** How many share the freshest confirmation: what the tie-break has to sort out. */
  readonly tied: (replicas: number) => number;
}

/** The replicas one sweep renews: those whose entries expired in one sweep interval. */
function renewedTogether(replicas: number): number {
  return Math.round((replicas * SWEEP_INTERVAL_MS) / RENEWAL_TTL_MS);
}

const SETUPS: readonly Setup[] = [
  { name: "confirmed 1 ms apart (no tie)", spacingMs: () => 1, loads: false, tied: () => 1 },
  {
    name: "confirmed in one millisecond, no stats (ids decide)",
    spacingMs: () => 0,
    loads: false,
    tied: (replicas) => replicas,
  },
  {
    name: "confirmed in one millisecond, loads 0 to 36",
    spacingMs: () => 0,
    loads: true,
    tied: (replicas) => replicas,
  },
  {
    name: "kept alive by streams, renewed by 5-s sweeps (TTL 60 s), no stats",
    spacingMs: (replicas) => RENEWAL_TTL_MS / replicas,
    loads: false,
    renewedWithTtlMs: RENEWAL_TTL_MS,
    tied: renewedTogether,
  },
  {
    name: "kept alive by streams, renewed by 5-s sweeps (TTL 60 s), loads 0 to 36",
    spacingMs: (replicas) => RENEWAL_TTL_MS / replicas,
    loads: true,
    renewedWithTtlMs: RENEWAL_TTL_MS,
    tied: renewedTogether,
  },
];

/**
 * Each scenario's lookups, timed one by one: p50 and p99 over each round's lookups, medians over
 * rounds. Replica ids are numbered in the order they first report, so in the renewal scenarios the
 * replicas renewed together are neighbours in id order too: the case where the tie's winners sit
 * furthest down the tie order.
 */
export function runTieBenchmark(options: TieBenchOptions): TieScenario[] {
  return SETUPS.map((setup) => runScenario(setup, options));
}

function runScenario(setup: Setup, options: TieBenchOptions): TieScenario {
  let now = 1_000_000;
  const ttlMs = setup.renewedWithTtlMs ?? 86_400_000;
  const index = createCacheIndex({ clock: { now: () => now }, ttlMs, maxEntries: 10_000_000 });
  const spacing = setup.spacingMs(options.replicas);
  for (let i = 0; i < options.replicas; i++) {
    now += spacing;
    index.report({
      ...SCOPE,
      replicaId: `replica-${i}`,
      prefixes: [
        { prefixHash: hashOf(1), tokenCount: 512 },
        { prefixHash: hashOf(1_000 + i), tokenCount: 1_024 },
      ],
      ...(setup.loads
        ? { stats: { activeRequests: (i * 7_919) % 37, queuedRequests: 0, kvCacheUsage: 0 } }
        : {}),
    });
  }
  if (setup.renewedWithTtlMs !== undefined) {
    for (let i = 0; i < options.replicas; i++) {
      index.keepAlive({ ...SCOPE, replicaId: `replica-${i}` }, Number.POSITIVE_INFINITY);
    }
    const end = now + 2 * setup.renewedWithTtlMs;
    while (now < end) {
      now += SWEEP_INTERVAL_MS;
      let done = false;
      while (!done) done = index.sweep(10_000).done;
    }
  } else {
    now += 1;
  }
  const query = {
    ...SCOPE,
    prefixHashes: [hashOf(1), hashOf(999_999_999)],
    candidateReplicaIds: [],
    maxHints: 0,
  };
  for (let i = 0; i < 500; i++) index.lookup(query, true);
  const p50s: number[] = [];
  const p99s: number[] = [];
  const times = new Array<number>(options.lookupsPerRound);
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < options.lookupsPerRound; i++) {
      const start = performance.now();
      index.lookup(query, true);
      times[i] = (performance.now() - start) * 1_000;
    }
    p50s.push(quantile(times, 0.5));
    p99s.push(quantile(times, 0.99));
  }
  return {
    name: setup.name,
    replicas: options.replicas,
    tiedHolders: setup.tied(options.replicas),
    lookupP50Us: median(p50s),
    lookupP99Us: median(p99s),
  };
}

export function formatTieMarkdown(scenarios: readonly TieScenario[]): string {
  return [
    "| block 0's holders | replicas | of them tied, freshest | lookup p50 | lookup p99 |",
    "|---|---|---|---|---|",
    ...scenarios.map(
      (s) =>
        `| ${s.name} | ${fmt(s.replicas)} | ${fmt(s.tiedHolders)} | ${fmt(s.lookupP50Us)} µs | ${fmt(s.lookupP99Us)} µs |`,
    ),
  ].join("\n");
}
