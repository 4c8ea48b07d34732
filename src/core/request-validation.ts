import { IndexError } from "./index-error.js";
import {
  type DropReason,
  type EventBatch,
  MAX_NAME_LENGTH,
  MAX_PREFIX_HASH_BYTES,
  type PrefixHash,
  type ReplicaStats,
} from "./types.js";

/**
 * Checks a required name (tenant, model, replica id): the message of a failure says what to fix.
 * Returns the error rather than throwing, so lookups can turn it into an answer.
 */
export function nameError(field: string, value: string, required: boolean): IndexError | undefined {
  if (required && value.length === 0) {
    return new IndexError("invalid-argument", field, `${field} is required`);
  }
  if (value.length > MAX_NAME_LENGTH) {
    return new IndexError(
      "invalid-argument",
      field,
      `${field} is ${value.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`,
    );
  }
  return undefined;
}

/** Why a prefix hash is unusable, or undefined when it is fine. */
export function prefixHashProblem(hash: PrefixHash): DropReason | undefined {
  if (hash.length === 0) return "prefix-hash-empty";
  if (hash.length > MAX_PREFIX_HASH_BYTES) return "prefix-hash-too-long";
  return undefined;
}

function count(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new IndexError(
      "invalid-argument",
      field,
      `${field} must be a non-negative integer, got ${value}`,
    );
  }
}

/** Throws when stats hold a NaN, infinite, negative or out-of-range value. */
export function assertValidStats(prefix: string, stats: ReplicaStats | undefined): void {
  if (stats === undefined) return;
  count(`${prefix}.active_requests`, stats.activeRequests);
  count(`${prefix}.queued_requests`, stats.queuedRequests);
  const usage = stats.kvCacheUsage;
  if (!(Number.isFinite(usage) && usage >= 0 && usage <= 1)) {
    const field = `${prefix}.kv_cache_usage`;
    throw new IndexError(
      "invalid-argument",
      field,
      `${field} must be a fraction from 0 to 1, got ${usage}`,
    );
  }
}

/** Throws for a write whose scope is unusable: missing or over-long tenant, model, replica or scheme. */
export function assertValidWriteScope(write: {
  readonly tenant: string;
  readonly model: string;
  readonly replicaId: string;
  readonly hashScheme: string;
}): void {
  const error =
    nameError("tenant", write.tenant, true) ??
    nameError("model", write.model, true) ??
    nameError("replica_id", write.replicaId, true) ??
    nameError("hash_scheme", write.hashScheme, false);
  if (error) throw error;
}

/** Throws for a batch whose scope or any event's stats are invalid, before anything is applied. */
export function assertValidBatch(batch: EventBatch): void {
  assertValidWriteScope(batch);
  for (let i = 0; i < batch.events.length; i++) {
    const event = batch.events[i];
    if (event !== undefined && event.type !== "unknown") {
      assertValidStats(`events[${i}].stats`, event.stats);
    }
  }
}
