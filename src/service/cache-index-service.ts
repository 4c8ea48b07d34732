import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CacheIndexService,
  type EngineStreamState,
  EngineStreamStateSchema,
  GetCacheStateResponseSchema,
  HashSchemeStateSchema,
  PublishEventResponseSchema,
  ReasonCode,
  ReplicaStateSchema,
  ReportCacheStateResponseSchema,
  StreamConnection,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import type { CacheIndex } from "../core/cache-index.js";
import type { Clock } from "../core/clock.js";
import type { RouteAnswer } from "../core/types.js";
import type { KvEventStreamState } from "../kv-stream/kv-event-stream.js";
import type { UnaryServiceImpl } from "../transport/unary-service.js";
import {
  batchFromProto,
  createReusingRouteAnswerConverter,
  dropsToProto,
  lookupRouteResponse,
  reportFromProto,
  routeAnswerToProto,
  statsToProto,
  totalDropped,
} from "./message-conversion.js";
import { toStatusError } from "./status-mapping.js";

/** What the service needs from its surroundings. */
export interface CacheIndexServiceOptions {
  /** The index every method reads or writes. */
  index: CacheIndex;
  /** The clock the index runs on, to turn its times into ages. */
  clock: Clock;
  /**
   * Wall-clock milliseconds since the epoch, to date `last_seen` for operators.
   * @default Date.now
   */
  wallClock?: () => number;
  /**
   * Whether lookups may be answered. While false, LookupRoute answers NOT_READY (never an error).
   * @default () => true
   */
  isReady?: () => boolean;
  /** Told of each NOT_READY answer, which never reaches the index (for metrics). */
  onNotReady?: (model: string) => void;
  /**
   * Told of a lookup the index failed on unexpectedly (a bug). The lookup still fails open: it is
   * answered NO_HINT rather than with an error the gateway would have to handle.
   */
  onLookupFailure?: (error: unknown) => void;
  /**
   * The engines' KV-event streams the sidecar reads, for GetCacheState: those whose source names
   * the request's tenant and model are reported.
   * @default () => []
   */
  engineStreams?: () => readonly KvEventStreamState[];
  /**
   * For a transport that encodes each LookupRoute response before it hands the service another
   * call (the gRPC server does; connect-node may not): the service then writes every LookupRoute
   * response into one message it returns each time, and lets the index reuse its answer too (see
   * `CacheIndex.lookup`). A loaded server answers thousands of lookups a second, and each response
   * made anew is garbage (about 1 KB of objects for 4 hints) that it pays for in collections.
   * @default false
   */
  reuseLookupResponses?: boolean;
}

/**
 * The `CacheIndexService` implementation both transports serve. It converts messages to core types
 * and back and maps core errors to statuses; every decision is the core's.
 */
export function createCacheIndexService(
  options: CacheIndexServiceOptions,
): UnaryServiceImpl<typeof CacheIndexService> {
  const { index, clock } = options;
  const wallClock = options.wallClock ?? Date.now;
  const isReady = options.isReady ?? (() => true);
  const onNotReady = options.onNotReady ?? (() => {});
  const onLookupFailure = options.onLookupFailure ?? (() => {});
  const reuse = options.reuseLookupResponses ?? false;
  const toResponse = reuse ? createReusingRouteAnswerConverter() : routeAnswerToProto;

  return {
    reportCacheState(request) {
      try {
        const outcome = index.report(reportFromProto(request));
        return create(ReportCacheStateResponseSchema, {
          accepted: outcome.accepted,
          dropped: totalDropped(outcome.dropped),
          drops: dropsToProto(outcome.dropped),
        });
      } catch (error) {
        return toStatusError(error);
      }
    },

    publishEvent(request) {
      try {
        const outcome = index.publish(batchFromProto(request));
        return create(PublishEventResponseSchema, {
          applied: outcome.applied,
          ignored: outcome.ignored,
          drops: dropsToProto(outcome.dropped),
        });
      } catch (error) {
        return toStatusError(error);
      }
    },

    lookupRoute(request) {
      if (!isReady()) {
        onNotReady(request.model);
        return lookupRouteResponse(ReasonCode.NOT_READY, "the index is starting up");
      }
      let answer: RouteAnswer;
      try {
        // A LookupRouteRequest has a RouteQuery's fields: passed as it is, not copied.
        answer = index.lookup(request, reuse);
      } catch (error) {
        onLookupFailure(error);
        return lookupRouteResponse(
          ReasonCode.NO_HINT,
          "the lookup failed inside the index; see the server log",
        );
      }
      return toResponse(answer);
    },

    getCacheState(request) {
      try {
        const hashScheme = request.hashScheme === "" ? undefined : request.hashScheme;
        const state = index.describe({ tenant: request.tenant, model: request.model, hashScheme });
        const now = clock.now();
        const wallNow = wallClock();
        return create(GetCacheStateResponseSchema, {
          tenant: request.tenant,
          model: request.model,
          replicas: state.replicas.map((replica) => {
            const ageMs = Math.max(0, now - replica.lastSeenAt);
            return create(ReplicaStateSchema, {
              replicaId: replica.replicaId,
              stats: statsToProto(replica.replicaId, replica.stats),
              prefixCount: BigInt(replica.prefixCount),
              lastSeen: timestampFromMs(Math.round(wallNow - ageMs)),
              lastSeenAgeSeconds: ageMs / 1000,
            });
          }),
          totalEntries: BigInt(state.totalEntries),
          hashSchemes: state.hashSchemes.map((scheme) =>
            create(HashSchemeStateSchema, {
              hashScheme: scheme.hashScheme,
              entries: BigInt(scheme.entries),
            }),
          ),
          engineStreams: (options.engineStreams?.() ?? [])
            .filter((s) => s.source.tenant === request.tenant && s.source.model === request.model)
            .sort((a, b) => (a.source.name < b.source.name ? -1 : 1))
            .map(engineStreamToProto),
        });
      } catch (error) {
        return toStatusError(error);
      }
    },
  };
}

const CONNECTION_TO_PROTO = {
  connecting: StreamConnection.CONNECTING,
  connected: StreamConnection.CONNECTED,
  disconnected: StreamConnection.DISCONNECTED,
} as const;

/** A stream's state as the contract reports it: counters summed over its data-parallel ranks. */
function engineStreamToProto(state: KvEventStreamState): EngineStreamState {
  const sum = (count: (r: KvEventStreamState["replicas"][number]) => number) =>
    BigInt(state.replicas.reduce((total, replica) => total + count(replica), 0));
  const ages = state.replicas
    .map((replica) => replica.lastBatchAgeSeconds)
    .filter((age) => age !== undefined);
  return create(EngineStreamStateSchema, {
    source: state.source.name,
    endpoint: state.source.endpoint,
    connection: CONNECTION_TO_PROTO[state.connection],
    replicaIds: state.replicas.map((replica) => replica.replicaId),
    lastBatchAgeSeconds: ages.length === 0 ? undefined : Math.min(...ages),
    batches: sum((r) => r.batches),
    decodeErrors: BigInt(state.decodeErrors + state.framingErrors),
    gaps: sum((r) => r.gaps),
    replays: sum((r) => r.replays),
    restarts: sum((r) => r.restarts),
    clears: sum((r) => r.clears.gap + r.clears.restart),
  });
}
