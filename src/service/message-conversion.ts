import { create } from "@bufbuild/protobuf";
import {
  CacheEventType,
  type DropCount,
  DropCountSchema,
  DropReason,
  type PublishEventRequest,
  ReasonCode,
  type ReplicaStats as ReplicaStatsMessage,
  ReplicaStatsSchema,
  type ReportCacheStateRequest,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import {
  type CacheEvent,
  type CacheReport,
  type DropReason as CoreDropReason,
  DROP_REASONS,
  type DropCounts,
  type EventBatch,
  type ReplicaStats,
  type RouteReason,
} from "../core/types.js";

/**
 * Conversions between the contract's messages and the core's types. Nothing here decides anything:
 * the core validates, this only renames.
 */

const DROP_REASON_TO_PROTO: Record<CoreDropReason, DropReason> = {
  "hash-scheme-missing": DropReason.HASH_SCHEME_MISSING,
  "prefix-hash-empty": DropReason.PREFIX_HASH_EMPTY,
  "prefix-hash-too-long": DropReason.PREFIX_HASH_TOO_LONG,
  "unknown-event-type": DropReason.UNKNOWN_EVENT_TYPE,
};

/** The contract's enum for each core route reason (NOT_READY is answered before the core). */
export const ROUTE_REASON_TO_PROTO: Record<RouteReason, ReasonCode> = {
  "prefix-match": ReasonCode.PREFIX_MATCH,
  "no-hint": ReasonCode.NO_HINT,
  "hash-scheme-missing": ReasonCode.HASH_SCHEME_MISSING,
  "invalid-request": ReasonCode.INVALID_REQUEST,
};

/** Core stats from a message; `replica_id` inside stats is dropped: the request's wins. */
export function statsFromProto(stats: ReplicaStatsMessage | undefined): ReplicaStats | undefined {
  if (stats === undefined) return undefined;
  return {
    activeRequests: stats.activeRequests,
    queuedRequests: stats.queuedRequests,
    kvCacheUsage: stats.kvCacheUsage,
  };
}

/** Stats as a message, stamped with the replica they are stored under. */
export function statsToProto(
  replicaId: string,
  stats: ReplicaStats | undefined,
): ReplicaStatsMessage | undefined {
  if (stats === undefined) return undefined;
  return create(ReplicaStatsSchema, { replicaId, ...stats });
}

export function reportFromProto(request: ReportCacheStateRequest): CacheReport {
  return {
    tenant: request.tenant,
    model: request.model,
    replicaId: request.replicaId,
    hashScheme: request.hashScheme,
    // A PrefixEntry message already has the core's shape: passed through, not copied.
    prefixes: request.prefixes,
    stats: statsFromProto(request.stats),
  };
}

function eventFromProto(event: PublishEventRequest["events"][number]): CacheEvent {
  const stats = statsFromProto(event.stats);
  switch (event.type) {
    case CacheEventType.PREFIX_ADDED:
      return { type: "prefix-added", prefixes: event.prefixes, stats };
    case CacheEventType.PREFIX_EVICTED:
      return { type: "prefix-evicted", prefixes: event.prefixes, stats };
    case CacheEventType.REPLICA_UPDATED:
      return { type: "replica-updated", stats };
    case CacheEventType.ALL_CLEARED:
      return { type: "all-cleared", stats };
    default:
      // UNSPECIFIED, or a value added to the enum after this server was built.
      return { type: "unknown" };
  }
}

export function batchFromProto(request: PublishEventRequest): EventBatch {
  return {
    tenant: request.tenant,
    model: request.model,
    replicaId: request.replicaId,
    hashScheme: request.hashScheme,
    events: request.events.map(eventFromProto),
  };
}

/** The non-zero drop counts, in a stable order. */
export function dropsToProto(dropped: DropCounts): DropCount[] {
  const drops: DropCount[] = [];
  for (const reason of DROP_REASONS) {
    if (dropped[reason] > 0) {
      drops.push(
        create(DropCountSchema, { reason: DROP_REASON_TO_PROTO[reason], count: dropped[reason] }),
      );
    }
  }
  return drops;
}

/** Total of all drop counts. */
export function totalDropped(dropped: DropCounts): number {
  let total = 0;
  for (const reason of DROP_REASONS) total += dropped[reason];
  return total;
}
