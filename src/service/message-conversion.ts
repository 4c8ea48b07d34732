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
  return writeStats(blankStatsMessage(), replicaId, stats);
}

function blankStatsMessage(): ReplicaStatsMessage {
  return {
    $typeName: "inferencecache.v1.ReplicaStats",
    replicaId: "",
    activeRequests: 0,
    queuedRequests: 0,
    kvCacheUsage: 0,
  };
}

function writeStats(
  into: ReplicaStatsMessage,
  replicaId: string,
  stats: ReplicaStats,
): ReplicaStatsMessage {
  into.replicaId = replicaId;
  into.activeRequests = stats.activeRequests;
  into.queuedRequests = stats.queuedRequests;
  into.kvCacheUsage = stats.kvCacheUsage;
  return into;
}

/** Writes `hint`, with `stats` as its stats message, into `into`. */
function writeHint(
  into: ReplicaHintMessage,
  hint: ReplicaHint,
  stats: ReplicaStatsMessage | undefined,
): ReplicaHintMessage {
  into.replicaId = hint.replicaId;
  into.matchedBlocks = hint.matchedBlocks;
  into.matchedTokens = hint.matchedTokens;
  into.freshness = hint.freshness;
  into.score = hint.score;
  into.stats = stats;
  into.storageTier = TIER_TO_PROTO[hint.tier];
  return into;
}

function blankHintMessage(): ReplicaHintMessage {
  return {
    $typeName: "inferencecache.v1.ReplicaHint",
    replicaId: "",
    matchedBlocks: 0,
    matchedTokens: 0,
    freshness: 0,
    score: 0,
    stats: undefined,
    storageTier: StorageTier.UNSPECIFIED,
  };
}

/** Writes `answer`'s fields but its hints into `into`. */
function writeAnswerFields(into: LookupRouteResponse, answer: RouteAnswer): LookupRouteResponse {
  into.reasonCode = ROUTE_REASON_TO_PROTO[answer.reason];
  into.invalidField = answer.invalidField;
  into.chainTruncated = answer.chainTruncated;
  into.evaluatedBlocks = answer.evaluatedBlocks;
  into.detail = answer.detail;
  return into;
}

/** The core's answer to a lookup as the contract's response. Cost: O(hints). */
export function routeAnswerToProto(answer: RouteAnswer): LookupRouteResponse {
  const response = lookupRouteResponse(ReasonCode.UNSPECIFIED, "");
  for (const hint of answer.hints) {
    response.hints.push(
      writeHint(blankHintMessage(), hint, statsToProto(hint.replicaId, hint.stats)),
    );
  }
  return writeAnswerFields(response, answer);
}

/** `pool[i]`, made with `make` when the pool is not that long yet (it grows one at a time). */
function pooled<T>(pool: T[], i: number, make: () => T): T {
  let item = pool[i];
  if (item === undefined) {
    item = make();
    pool.push(item);
  }
  return item;
}

/**
 * A {@link routeAnswerToProto} that writes every answer into one response it returns each time,
 * with a hint message per rank and a stats message per hint made as first needed: for a caller
 * that is done with each response (has encoded it) before it converts the next. Cost: O(hints);
 * nothing allocated once it has made as many hints as the largest answer has.
 */
export function createReusingRouteAnswerConverter(): (answer: RouteAnswer) => LookupRouteResponse {
  const response = lookupRouteResponse(ReasonCode.UNSPECIFIED, "");
  const hintMessages: ReplicaHintMessage[] = [];
  const statsMessages: ReplicaStatsMessage[] = [];
  return (answer) => {
    const { hints } = answer;
    for (let i = 0; i < hints.length; i++) {
      const hint = hints[i] as ReplicaHint;
      const stats =
        hint.stats === undefined
          ? undefined
          : writeStats(pooled(statsMessages, i, blankStatsMessage), hint.replicaId, hint.stats);
      response.hints[i] = writeHint(pooled(hintMessages, i, blankHintMessage), hint, stats);
    }
    response.hints.length = hints.length;
    return writeAnswerFields(response, answer);
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
