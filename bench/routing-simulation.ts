import type { CacheIndex } from "../src/core/cache-index.js";
import { DEFAULT_TTL_MS } from "../src/core/cache-index-options.js";
import { createCacheIndex } from "../src/core/create-cache-index.js";
import type { ReplicaId } from "../src/core/types.js";
import { DEFAULT_LIVENESS_WINDOW_MS } from "../src/kv-stream/kv-event-stream.js";
import { DEFAULT_SWEEP_BUDGET, DEFAULT_SWEEP_INTERVAL_MS } from "../src/sweeper.js";
import type { TraceRequest } from "./mooncake-trace.js";
import type { RoutableRequest, RoutingPolicy } from "./routing-policies.js";
import {
  engineEvents,
  memoizedBlockHash,
  type ServiceModel,
  SimulatedFleet,
} from "./simulated-fleet.js";
import { TraceClock } from "./trace-clock.js";

/**
 * One run of the routing simulator: the trace, in timestamp order, routed by one policy over a
 * simulated fleet whose engines feed an index with their events, on a clock that reads trace time.
 */

/** The scope the simulated fleet writes to and the index-hints policy reads from. */
export const SIMULATION_SCOPE = Object.freeze({
  tenant: "simulation",
  model: "mooncake",
  hashScheme: "mooncake-bs512",
});

/** What a policy may be built from. */
export interface PolicyContext {
  readonly replicas: number;
  readonly capacityBlocks: number;
  /** Replica i's id in the index. */
  readonly replicaIds: readonly ReplicaId[];
  /** The index the fleet's events feed (fresh for every run). */
  readonly index: CacheIndex;
  readonly scope: typeof SIMULATION_SCOPE;
}

/** Options of {@link simulateRouting}. */
export interface RoutingSimulationOptions {
  /** In timestamp order, hashes prebuilt (see {@link routableRequests}). */
  readonly requests: readonly RoutableRequest[];
  readonly replicas: number;
  /** Each replica's KV capacity, in trace blocks. */
  readonly capacityBlocks: number;
  readonly createPolicy: (context: PolicyContext) => RoutingPolicy;
  /** @default NOMINAL_SERVICE_MODEL */
  readonly serviceModel?: ServiceModel;
  /** The index's TTL, in trace time (ms). @default DEFAULT_TTL_MS, the sidecar's */
  readonly ttlMs?: number;
  /**
   * How far ahead each replica's live stream vouches for its entries, as the sidecar's
   * `--liveness-window-seconds`. @default DEFAULT_LIVENESS_WINDOW_MS
   */
  readonly livenessWindowMs?: number;
  /** How often the index is swept, in trace time. @default DEFAULT_SWEEP_INTERVAL_MS */
  readonly sweepIntervalMs?: number;
}

/** What one policy achieved on one fleet. */
export interface RoutingSimulationResult {
  readonly policy: string;
  readonly replicas: number;
  readonly capacityBlocks: number;
  readonly requests: number;
  /** Blocks of every request's chain. */
  readonly requestedBlocks: number;
  /** Leading blocks the chosen replica held when the request arrived. */
  readonly reusedBlocks: number;
  /** reusedBlocks / requestedBlocks. */
  readonly hitRate: number;
  /** Most requests sent to one replica over the mean per replica (1 = perfectly even). */
  readonly loadImbalance: number;
  /** Most requests in flight on one replica at any arrival, counting the new one. */
  readonly peakActiveRequests: number;
}

/** The trace with every chain's prefix hashes built once, shared by every run. */
export function routableRequests(trace: readonly TraceRequest[]): RoutableRequest[] {
  const hashOf = memoizedBlockHash();
  return trace.map((request) => ({ ...request, prefixHashes: request.hashIds.map(hashOf) }));
}

/**
 * Routes every request with the policy, lets the chosen replica serve it, and feeds the index as
 * the sidecar's engine streams do:
 * - after each request, what vLLM's KV events carry: its evictions and the blocks it stored (a
 *   cache hit publishes nothing), with its load; when requests finish, a `replica-updated` with the
 *   lower load;
 * - every replica's stream stays live, so its entries are kept alive (after each of its batches
 *   and every quarter of the liveness window) and the sweeps, every `sweepIntervalMs`, confirm
 *   again those that reach the TTL.
 */
export function simulateRouting(options: RoutingSimulationOptions): RoutingSimulationResult {
  const { requests, replicas, capacityBlocks } = options;
  const start = requests[0]?.timestampMs ?? 0;
  const clock = new TraceClock(start);
  const index = createCacheIndex({
    clock,
    ttlMs: options.ttlMs ?? DEFAULT_TTL_MS,
    maxEntries: Math.max(1_000_000, 2 * replicas * capacityBlocks),
  });
  const livenessWindowMs = options.livenessWindowMs ?? DEFAULT_LIVENESS_WINDOW_MS;
  const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  const fleet = new SimulatedFleet({
    replicas,
    capacityBlocks,
    ...(options.serviceModel === undefined ? {} : { serviceModel: options.serviceModel }),
  });
  const replicaIds = Array.from({ length: replicas }, (_, i) => `replica-${i}`);
  const policy = options.createPolicy({
    replicas,
    capacityBlocks,
    replicaIds,
    index,
    scope: SIMULATION_SCOPE,
  });
  const hashOf = memoizedBlockHash();
  const refOf = (replica: number) => ({
    tenant: SIMULATION_SCOPE.tenant,
    model: SIMULATION_SCOPE.model,
    replicaId: replicaIds[replica] as string,
  });
  const publish = (replica: number, events: ReturnType<typeof engineEvents>) => {
    index.publish({ ...SIMULATION_SCOPE, replicaId: replicaIds[replica] as string, events });
    index.keepAlive(refOf(replica), clock.now() + livenessWindowMs);
  };
  // The streams' timers and the sweeper's, in trace time: each fires at its own instant, before
  // the arrival that comes after it.
  let nextVouch = start + livenessWindowMs / 4;
  let nextSweep = start + sweepIntervalMs;
  const runTimersUntil = (nowMs: number) => {
    while (Math.min(nextVouch, nextSweep) <= nowMs) {
      if (nextVouch <= nextSweep) {
        clock.advanceTo(nextVouch);
        for (let replica = 0; replica < replicas; replica++) {
          index.keepAlive(refOf(replica), nextVouch + livenessWindowMs);
        }
        nextVouch += livenessWindowMs / 4;
      } else {
        clock.advanceTo(nextSweep);
        while (!index.sweep(DEFAULT_SWEEP_BUDGET).done) {}
        nextSweep += sweepIntervalMs;
      }
    }
  };

  let requestedBlocks = 0;
  let reusedBlocks = 0;
  let peakActiveRequests = 0;
  for (const request of requests) {
    runTimersUntil(request.timestampMs);
    clock.advanceTo(request.timestampMs);
    for (const replica of fleet.advanceTo(request.timestampMs)) {
      publish(replica, [{ type: "replica-updated", stats: fleet.stats(replica) }]);
    }
    const replica = policy.choose(request, fleet);
    const change = fleet.serve(replica, request, request.timestampMs);
    policy.routed?.(request, replica);
    publish(replica, engineEvents(change, hashOf, { stats: fleet.stats(replica) }));
    requestedBlocks += request.hashIds.length;
    reusedBlocks += change.reusedBlocks;
    peakActiveRequests = Math.max(peakActiveRequests, fleet.activeRequests(replica));
  }

  let mostServed = 0;
  for (let replica = 0; replica < replicas; replica++) {
    mostServed = Math.max(mostServed, fleet.servedRequests(replica));
  }
  return {
    policy: policy.name,
    replicas,
    capacityBlocks,
    requests: requests.length,
    requestedBlocks,
    reusedBlocks,
    hitRate: requestedBlocks === 0 ? 0 : reusedBlocks / requestedBlocks,
    loadImbalance: requests.length === 0 ? 0 : mostServed / (requests.length / replicas),
    peakActiveRequests,
  };
}
