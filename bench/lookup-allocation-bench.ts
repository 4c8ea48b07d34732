import { Session } from "node:inspector/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  CacheIndexService,
  LookupRouteRequestSchema,
} from "../gen/inferencecache/v1/cache_index_pb.js";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import { createIndexMetrics } from "../src/metrics/index-metrics.js";
import { createInstrumentedIndex } from "../src/metrics/instrumented-index.js";
import { createCacheIndexService } from "../src/service/cache-index-service.js";
import { DEFAULT_GRPC_CODECS } from "../src/transport/grpc-server.js";
import { createGrpcUnaryAdapter } from "../src/transport/grpc-unary-adapter.js";
import { blockHash, MOONCAKE_BLOCK_TOKENS, type TraceRequest } from "./mooncake-trace.js";

/** Bytes allocated per LookupRoute call by the sidecar's own code, reusing responses and not. */
export interface LookupAllocationResult {
  readonly calls: number;
  readonly samplingIntervalBytes: number;
  /** As the gRPC server runs it: the service made with `reuseLookupResponses`. */
  readonly reusingBytesPerCall: number;
  /** A service that makes every response anew (connect-node's). */
  readonly freshBytesPerCall: number;
}

const SCOPE = { tenant: "bench", model: "mooncake", hashScheme: "mooncake-bs512" };
const SAMPLING_INTERVAL_BYTES = 32;

/**
 * What one LookupRoute call allocates in the sidecar's code, in this process: the gRPC handler
 * grpc-js would call (decode, service, instrumented index, encode) on the trace's chains, the
 * index loaded with the trace's `replicas`-replica fleet. Measured with V8's sampling heap
 * profiler (every object allocated counts, collected or not), after warm-up rounds that let the
 * code be optimised: an estimate, as the profiler samples, but over tens of thousands of calls.
 * grpc-js's own allocations per call are not included.
 */
export async function runLookupAllocationBenchmark(
  trace: readonly TraceRequest[],
  replicas: number,
): Promise<LookupAllocationResult> {
  const chains = trace.map((request) => request.hashIds.map(blockHash));
  const requests = chains.map((prefixHashes) =>
    Buffer.from(
      toBinary(
        LookupRouteRequestSchema,
        create(LookupRouteRequestSchema, { ...SCOPE, prefixHashes }),
      ),
    ),
  );
  const measure = async (reuseLookupResponses: boolean) => {
    const raw = createCacheIndex({ clock: performance, maxEntries: 10_000_000 });
    const index = createInstrumentedIndex(
      raw,
      createIndexMetrics({ index: raw, collectDefaultMetrics: false }),
    );
    chains.forEach((chain, i) => {
      index.report({
        ...SCOPE,
        replicaId: `replica-${i % replicas}`,
        prefixes: chain.map((prefixHash, d) => ({
          prefixHash,
          tokenCount: (d + 1) * MOONCAKE_BLOCK_TOKENS,
        })),
      });
    });
    const service = createCacheIndexService({ index, clock: performance, reuseLookupResponses });
    const handler = createGrpcUnaryAdapter(
      CacheIndexService,
      service,
      () => {},
      DEFAULT_GRPC_CODECS,
    ).implementation.lookupRoute as (
      call: { request: Buffer },
      callback: (error: unknown, response?: Buffer) => void,
    ) => void;
    const calls = requests.map((request) => ({ request }));
    const callback = (error: unknown) => {
      if (error !== null) throw new Error(`LookupRoute failed: ${String(error)}`);
    };
    const round = () => {
      for (const call of calls) handler(call, callback);
    };
    for (let i = 0; i < 8; i++) round();
    const session = new Session();
    session.connect();
    try {
      await session.post("HeapProfiler.startSampling", {
        samplingInterval: SAMPLING_INTERVAL_BYTES,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      const rounds = 4;
      for (let i = 0; i < rounds; i++) round();
      const { profile } = await session.post("HeapProfiler.stopSampling");
      return { bytes: totalSelfSize(profile.head), calls: rounds * calls.length };
    } finally {
      session.disconnect();
    }
  };
  const reusing = await measure(true);
  const fresh = await measure(false);
  return {
    calls: reusing.calls,
    samplingIntervalBytes: SAMPLING_INTERVAL_BYTES,
    reusingBytesPerCall: reusing.bytes / reusing.calls,
    freshBytesPerCall: fresh.bytes / fresh.calls,
  };
}

interface ProfileNode {
  readonly selfSize: number;
  readonly children: readonly ProfileNode[];
}

function totalSelfSize(node: ProfileNode): number {
  let total = node.selfSize;
  for (const child of node.children) total += totalSelfSize(child);
  return total;
}
