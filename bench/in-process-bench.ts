import type { CacheIndex } from "../src/core/cache-index.js";
import type { PrefixEntry } from "../src/core/types.js";
import { blockHash, MOONCAKE_BLOCK_TOKENS, type TraceRequest } from "./mooncake-trace.js";
import { median, quantile } from "./stats.js";

/** What the in-process benchmark measured (medians over rounds). */
export interface InProcessResult {
  readonly replicas: number;
  readonly requests: number;
  readonly holderEntries: number;
  readonly rounds: number;
  readonly ingestedPrefixesPerSecond: number;
  readonly lookupsPerSecond: number;
  readonly lookupP50Us: number;
  readonly lookupP99Us: number;
  readonly meanMatchedBlocks: number;
}

export interface InProcessOptions {
  readonly trace: readonly TraceRequest[];
  readonly createIndex: () => CacheIndex;
  /** Replicas the trace's requests are spread over (request i goes to replica i mod n). */
  readonly replicas: number;
  readonly rounds: number;
}

const TENANT = "bench";
const MODEL = "mooncake";
const SCHEME = "mooncake-bs512";

/**
 * Ingests the whole trace as reports (each request's chain to its replica), then looks up every
 * request's chain. Prefix hashes are built before timing starts, so the figures are the index's.
 */
export function runInProcessBenchmark(options: InProcessOptions): InProcessResult {
  const { trace, replicas } = options;
  const chains = trace.map((request) => request.hashIds.map(blockHash));
  const reports = chains.map((chain): PrefixEntry[] =>
    chain.map((prefixHash, i) => ({ prefixHash, tokenCount: (i + 1) * MOONCAKE_BLOCK_TOKENS })),
  );
  const replicaIds = Array.from({ length: replicas }, (_, i) => `replica-${i}`);

  const ingestRates: number[] = [];
  const lookupRates: number[] = [];
  const p50s: number[] = [];
  const p99s: number[] = [];
  let holderEntries = 0;
  let matchedBlocks = 0;
  let prefixCount = 0;
  for (const prefixes of reports) prefixCount += prefixes.length;

  // One extra round first, untimed, so the JIT has compiled the hot paths.
  for (let round = -1; round < options.rounds; round++) {
    const index = options.createIndex();
    const ingestStart = performance.now();
    for (let i = 0; i < reports.length; i++) {
      index.report({
        tenant: TENANT,
        model: MODEL,
        replicaId: replicaIds[i % replicas] as string,
        hashScheme: SCHEME,
        prefixes: reports[i] as PrefixEntry[],
      });
    }
    const ingestSeconds = (performance.now() - ingestStart) / 1000;
    holderEntries = index.size().entries;

    const latencies = new Float64Array(chains.length);
    matchedBlocks = 0;
    const lookupStart = performance.now();
    for (let i = 0; i < chains.length; i++) {
      const t0 = performance.now();
      const answer = index.lookup({
        tenant: TENANT,
        model: MODEL,
        hashScheme: SCHEME,
        prefixHashes: chains[i] as Uint8Array[],
        candidateReplicaIds: [],
        maxHints: 0,
      });
      latencies[i] = performance.now() - t0;
      matchedBlocks += answer.hints[0]?.matchedBlocks ?? 0;
    }
    const lookupSeconds = (performance.now() - lookupStart) / 1000;
    if (round < 0) continue;
    ingestRates.push(prefixCount / ingestSeconds);
    lookupRates.push(chains.length / lookupSeconds);
    const sample = Array.from(latencies);
    p50s.push(quantile(sample, 0.5) * 1000);
    p99s.push(quantile(sample, 0.99) * 1000);
  }
  return {
    replicas,
    requests: trace.length,
    holderEntries,
    rounds: options.rounds,
    ingestedPrefixesPerSecond: median(ingestRates),
    lookupsPerSecond: median(lookupRates),
    lookupP50Us: median(p50s),
    lookupP99Us: median(p99s),
    meanMatchedBlocks: matchedBlocks / chains.length,
  };
}
