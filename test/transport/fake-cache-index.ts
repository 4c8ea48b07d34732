import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type CacheIndexService,
  GetCacheStateResponseSchema,
  LookupRouteResponseSchema,
  ReasonCode,
  ReportCacheStateResponseSchema,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import type { UnexpectedErrorHandler } from "../../src/transport/public-error.js";
import type { UnaryServiceImpl } from "../../src/transport/unary-service.js";

/** The message `publishEvent` fails with; no client may ever see it. */
export const secretFailure = "connection to 10.0.0.7:5432 refused (password=hunter2)";

/**
 * A stand-in for the cache index service, with one behaviour per method that transport tests need:
 *
 * - `lookupRoute` ranks a hint `replica-<i>` for every prefix hash it is given (so a response grows
 *   faster than its request) and echoes tenant and model in `detail`;
 * - `reportCacheState` rejects an empty tenant with `invalid_argument: tenant is required`, and
 *   accepts every prefix otherwise;
 * - `publishEvent` always throws a plain `Error` holding `secretFailure`, like a bug would;
 * - `getCacheState` echoes tenant and model.
 */
export const fakeCacheIndex: UnaryServiceImpl<typeof CacheIndexService> = {
  reportCacheState(request) {
    if (request.tenant === "") {
      throw new ConnectError("tenant is required", Code.InvalidArgument);
    }
    return create(ReportCacheStateResponseSchema, { accepted: request.prefixes.length });
  },
  publishEvent() {
    throw new Error(secretFailure);
  },
  lookupRoute(request) {
    return create(LookupRouteResponseSchema, {
      reasonCode: request.prefixHashes.length > 0 ? ReasonCode.PREFIX_MATCH : ReasonCode.NO_HINT,
      hints: request.prefixHashes.map((_, i) => ({ replicaId: `replica-${i}`, matchedBlocks: 1 })),
      evaluatedBlocks: request.prefixHashes.length,
      detail: `${request.tenant}/${request.model}`,
    });
  },
  getCacheState(request) {
    return create(GetCacheStateResponseSchema, { tenant: request.tenant, model: request.model });
  },
};

/** An `onUnexpectedError` that remembers what it was told. */
export function createErrorRecorder(): {
  readonly errors: Array<{ error: unknown; method: string }>;
  readonly onUnexpectedError: UnexpectedErrorHandler;
} {
  const errors: Array<{ error: unknown; method: string }> = [];
  return { errors, onUnexpectedError: (error, method) => errors.push({ error, method }) };
}
