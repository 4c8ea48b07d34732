import type { RouteReason } from "../core/types.js";

/**
 * Why a route lookup was answered as it was, spelled as the gRPC contract's `ReasonCode` enum names
 * without their `REASON_CODE_` prefix: the `reason_code` label of
 * `inferencecache_lookup_route_calls_total`. `NOT_READY` is answered by the service before the
 * index is consulted, so it has no {@link RouteReason}.
 */
export type LookupReasonCode =
  | "PREFIX_MATCH"
  | "NO_HINT"
  | "HASH_SCHEME_MISSING"
  | "INVALID_REQUEST"
  | "NOT_READY";

/** Every lookup reason code, in the contract's enum order. */
export const LOOKUP_REASON_CODES: readonly LookupReasonCode[] = [
  "PREFIX_MATCH",
  "NO_HINT",
  "HASH_SCHEME_MISSING",
  "INVALID_REQUEST",
  "NOT_READY",
];

const reasonCodeByRouteReason: Readonly<Record<RouteReason, LookupReasonCode>> = {
  "prefix-match": "PREFIX_MATCH",
  "no-hint": "NO_HINT",
  "hash-scheme-missing": "HASH_SCHEME_MISSING",
  "invalid-request": "INVALID_REQUEST",
};

/** The reason code an index's {@link RouteReason} is counted under. */
export function lookupReasonCode(reason: RouteReason): LookupReasonCode {
  return reasonCodeByRouteReason[reason];
}
