/** The closed set of reasons the core rejects a call for. */
export type IndexErrorReason = "invalid-argument" | "resource-exhausted";

/**
 * The one error type the core throws. `field` names the offending field as the gRPC contract spells
 * it (`tenant`, `stats.kv_cache_usage`, `events[2].stats.active_requests`), so the edge can pass the
 * message through unchanged.
 */
export class IndexError extends Error {
  override readonly name = "IndexError";
  readonly reason: IndexErrorReason;
  readonly field: string;

  constructor(reason: IndexErrorReason, field: string, message: string) {
    super(message);
    this.reason = reason;
    this.field = field;
  }
}
