import { IndexError } from "./index-error.js";
import {
  type DropReason,
  type EventBatch,
  MAX_NAME_LENGTH,
  MAX_PREFIX_HASH_BYTES,
  MAX_TOKEN_COUNT,
  type PrefixHash,
  type ReplicaStats,
} from "./types.js";

/** What is wrong with one field, and a message that says what to fix. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * Checks a name (tenant, model, replica id, scheme label). Returns the problem as a value, so a
 * lookup answers it without building an error; writes throw it with {@link problemError}.
 */
export function nameProblem(
  field: string,
  value: string,
  required: boolean,
): FieldProblem | undefined {
  if (required && value.length === 0) return { field, message: `${field} is required` };
  if (value.length > MAX_NAME_LENGTH) {
    const message = `${field} is ${value.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`;
    return { field, message };
  }
  return undefined;
}

/**
 * The error a write throws when it would add a replica past `maxReplicas`: the index keeps what it
 * has, and the writer is told why (`RESOURCE_EXHAUSTED` at the edge).
 */
export function replicaCapError(maxReplicas: number): IndexError {
  return new IndexError(
    "resource-exhausted",
    "replica_id",
    `the index already knows ${maxReplicas} replicas, its limit (--max-replicas); replicas it knows still write, and one that stays silent past the TTL holding nothing makes room`,
  );
}

/** The error a write throws for `problem`. */
export function problemError(problem: FieldProblem): IndexError {
  return new IndexError("invalid-argument", problem.field, problem.message);
}

/**
 * A reported token count as the index keeps it: whole tokens, at most {@link MAX_TOKEN_COUNT}, and
 * 0 (unknown, see the contract) for anything that is not a positive number, so that a negative or
 * NaN count from a caller of the core can neither pass for a count nor corrupt the flags stored
 * beside it.
 */
export function tokenCountOf(count: number): number {
  return count > 0 ? Math.min(Math.floor(count), MAX_TOKEN_COUNT) : 0;
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
  const problem =
    nameProblem("tenant", write.tenant, true) ??
    nameProblem("model", write.model, true) ??
    nameProblem("replica_id", write.replicaId, true) ??
    nameProblem("hash_scheme", write.hashScheme, false);
  if (problem) throw problemError(problem);
}

/** Throws for a batch whose scope or any event's stats are invalid, before anything is applied. */
export function assertValidBatch(batch: EventBatch): void {
  assertValidWriteScope(batch);
  for (let i = 0; i < batch.events.length; i++) {
    const event = batch.events[i];
    // The field's name is only built for stats that are there.
    if (event !== undefined && event.type !== "unknown" && event.stats !== undefined) {
      assertValidStats(`events[${i}].stats`, event.stats);
    }
  }
}
