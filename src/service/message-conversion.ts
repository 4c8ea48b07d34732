import { create } from "@bufbuild/protobuf";
import {
  CacheEventType,
  type DropCount,
  DropCountSchema,
  DropReason,
  type LookupRouteResponse,
  type PublishEventRequest,
  ReasonCode,
  type ReplicaHint as ReplicaHintMessage,
  type ReplicaStats as ReplicaStatsMessage,
  type ReportCacheStateRequest,
  StorageTier,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import {
  type CacheEvent,
  type CacheReport,
  type DropReason as CoreDropReason,
  type StorageTier as CoreStorageTier,
  DROP_REASONS,
  type DropCounts,
  type EventBatch,
  type ReplicaHint,
  type ReplicaStats,
  type RouteAnswer,
  type RouteReason,
} from "../core/types.js";

/**
 * Conversions between the contract's messages and the core's types. Nothing here decides anything:
 * the core validates, this only renames.
 *
 * Messages on LookupRoute's path are object literals rather than `create()` calls: `create()` walks
 * the schema by reflection, about 3 µs for a response of 4 hints against 0.1 µs. A literal holds
 * every field of its message, in the order `create()` sets them, so the two are interchangeable;
 * an unset message field (`stats`) is `undefined`, which protobuf-es reads as unset.
 */

const DROP_REASON_TO_PROTO: Record<CoreDropReason, DropReason> = {
  "hash-scheme-missing": DropReason.HASH_SCHEME_MISSING,
  "prefix-hash-empty": DropReason.PREFIX_HASH_EMPTY,
  "prefix-hash-too-long": DropReason.PREFIX_HASH_TOO_LONG,
  "unknown-event-type": DropReason.UNKNOWN_EVENT_TYPE,
  "unknown-block": DropReason.UNKNOWN_BLOCK,
  "too-many-hash-schemes": DropReason.TOO_MANY_HASH_SCHEMES,
};

const TIER_TO_PROTO: Record<CoreStorageTier, StorageTier> = {
  gpu: StorageTier.GPU,
  cpu: StorageTier.CPU,
  disk: StorageTier.DISK,
  other: StorageTier.OTHER,
};

/**
 * A write's tier: unset means the default of the event (GPU for additions, every tier for
 * removals); a value added to the enum after this server was built counts as OTHER.
 */
function tierFromProto(tier: StorageTier): CoreStorageTier | undefined {
  switch (tier) {
    case StorageTier.UNSPECIFIED:
      return undefined;
    case StorageTier.GPU:
      return "gpu";
    case StorageTier.CPU:
      return "cpu";
    case StorageTier.DISK:
      return "disk";
    default:
      return "other";
  }
}

/** The contract's enum for each core route reason (NOT_READY is answered before the core). */
const ROUTE_REASON_TO_PROTO: Record<RouteReason, ReasonCode> = {
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
  return {
    $typeName: "inferencecache.v1.ReplicaStats",
    replicaId,
    activeRequests: stats.activeRequests,
    queuedRequests: stats.queuedRequests,
    kvCacheUsage: stats.kvCacheUsage,
  };
}

/** A hint as a message. */
function hintToProto(hint: ReplicaHint): ReplicaHintMessage {
  return {
    $typeName: "inferencecache.v1.ReplicaHint",
    replicaId: hint.replicaId,
    matchedBlocks: hint.matchedBlocks,
    matchedTokens: hint.matchedTokens,
    freshness: hint.freshness,
    score: hint.score,
    stats: statsToProto(hint.replicaId, hint.stats),
    storageTier: TIER_TO_PROTO[hint.tier],
  };
}

/** The core's answer to a lookup as the contract's response. Cost: O(hints). */
export function routeAnswerToProto(answer: RouteAnswer): LookupRouteResponse {
  const hints: ReplicaHintMessage[] = [];
  for (const hint of answer.hints) hints.push(hintToProto(hint));
  return {
    $typeName: "inferencecache.v1.LookupRouteResponse",
    hints,
    reasonCode: ROUTE_REASON_TO_PROTO[answer.reason],
    invalidField: answer.invalidField,
    chainTruncated: answer.chainTruncated,
    evaluatedBlocks: answer.evaluatedBlocks,
    detail: answer.detail,
  };
}

/** A response with no hints: the service's own answers (NOT_READY, a failed lookup). */
export function lookupRouteResponse(reasonCode: ReasonCode, detail: string): LookupRouteResponse {
  return {
    $typeName: "inferencecache.v1.LookupRouteResponse",
    hints: [],
    reasonCode,
    invalidField: "",
    chainTruncated: false,
    evaluatedBlocks: 0,
    detail,
  };
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
  const tier = tierFromProto(event.storageTier);
  switch (event.type) {
    case CacheEventType.PREFIX_ADDED:
      return { type: "prefix-added", prefixes: event.prefixes, stats, tier };
    case CacheEventType.PREFIX_EVICTED:
      return { type: "prefix-evicted", prefixes: event.prefixes, stats, tier };
    case CacheEventType.REPLICA_UPDATED:
      return { type: "replica-updated", stats };
    case CacheEventType.ALL_CLEARED:
      return { type: "all-cleared", stats, tier };
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
