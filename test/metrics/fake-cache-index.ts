import type { CacheIndex } from "../../src/core/cache-index.js";
import {
  type CacheReport,
  type DropCounts,
  type EventBatch,
  type EvictionCounts,
  emptyDropCounts,
  emptyEvictionCounts,
  type IndexSize,
  type PublishOutcome,
  type ReplicaRef,
  type ReportOutcome,
  type RouteAnswer,
  type RouteQuery,
  type ScopeQuery,
  type ScopeState,
  type SweepOutcome,
} from "../../src/core/types.js";
import type { ManualClock } from "../support/manual-clock.js";

/** One call the fake received. */
export type FakeCall =
  | { readonly method: "report"; readonly argument: CacheReport }
  | { readonly method: "publish"; readonly argument: EventBatch }
  | { readonly method: "lookup"; readonly argument: RouteQuery; readonly reuse?: boolean }
  | { readonly method: "describe"; readonly argument: ScopeQuery }
  | { readonly method: "sweep"; readonly argument: number }
  | {
      readonly method: "keepAlive";
      readonly argument: { readonly replica: ReplicaRef; readonly until: number };
    }
  | { readonly method: "size"; readonly argument: undefined };

/**
 * A hand-written CacheIndex: records every call and returns whatever outcome a test put in its
 * fields, or throws `failure` when one is set.
 */
export class FakeCacheIndex implements CacheIndex {
  readonly calls: FakeCall[] = [];
  reportOutcome: ReportOutcome = reportOutcome();
  publishOutcome: PublishOutcome = publishOutcome();
  routeAnswer: RouteAnswer = routeAnswer();
  scopeState: ScopeState = { replicas: [], totalEntries: 0, hashSchemes: [] };
  sweepOutcome: SweepOutcome = {
    expiredEntries: 0,
    renewedEntries: 0,
    removedReplicas: 0,
    done: true,
  };
  indexSize: IndexSize = { entries: 0, entriesByModel: new Map(), replicas: 0 };
  /** Thrown by every method when set. */
  failure: Error | undefined;
  /** When set, every lookup moves this clock on by `lookupMs`. */
  clock: ManualClock | undefined;
  lookupMs = 0;

  report(report: CacheReport): ReportOutcome {
    this.#called({ method: "report", argument: report });
    return this.reportOutcome;
  }

  publish(batch: EventBatch): PublishOutcome {
    this.#called({ method: "publish", argument: batch });
    return this.publishOutcome;
  }

  lookup(query: RouteQuery, reuse?: boolean): RouteAnswer {
    this.#called(
      reuse === undefined
        ? { method: "lookup", argument: query }
        : { method: "lookup", argument: query, reuse },
    );
    this.clock?.advance(this.lookupMs);
    return this.routeAnswer;
  }

  describe(query: ScopeQuery): ScopeState {
    this.#called({ method: "describe", argument: query });
    return this.scopeState;
  }

  sweep(budget: number): SweepOutcome {
    this.#called({ method: "sweep", argument: budget });
    return this.sweepOutcome;
  }

  keepAlive(replica: ReplicaRef, until: number): void {
    this.#called({ method: "keepAlive", argument: { replica, until } });
  }

  size(): IndexSize {
    this.#called({ method: "size", argument: undefined });
    return this.indexSize;
  }

  #called(call: FakeCall): void {
    this.calls.push(call);
    if (this.failure !== undefined) throw this.failure;
  }
}

interface OutcomeOverrides {
  readonly dropped?: Partial<DropCounts>;
  readonly evicted?: Partial<EvictionCounts>;
}

/** A ReportOutcome with nothing in it but the given counts. */
export function reportOutcome(
  overrides: OutcomeOverrides & { readonly accepted?: number } = {},
): ReportOutcome {
  return {
    accepted: overrides.accepted ?? 0,
    dropped: { ...emptyDropCounts(), ...overrides.dropped },
    evicted: { ...emptyEvictionCounts(), ...overrides.evicted },
  };
}

/** A PublishOutcome with nothing in it but the given counts. */
export function publishOutcome(
  overrides: OutcomeOverrides & {
    readonly applied?: number;
    readonly ignored?: number;
    readonly addedPrefixes?: number;
  } = {},
): PublishOutcome {
  return {
    applied: overrides.applied ?? 0,
    ignored: overrides.ignored ?? 0,
    addedPrefixes: overrides.addedPrefixes ?? 0,
    dropped: { ...emptyDropCounts(), ...overrides.dropped },
    evicted: { ...emptyEvictionCounts(), ...overrides.evicted },
  };
}

/** A RouteAnswer for the given reason, with `hintCount` made-up hints. */
export function routeAnswer(reason: RouteAnswer["reason"] = "no-hint", hintCount = 0): RouteAnswer {
  return {
    reason,
    hints: Array.from({ length: hintCount }, (_, i) => ({
      replicaId: `replica-${i}`,
      matchedBlocks: 1,
      matchedTokens: 16,
      freshness: 1,
      tier: "gpu" as const,
      score: 16,
      stats: undefined,
    })),
    invalidField: reason === "invalid-request" ? "prefix_hashes" : "",
    chainTruncated: false,
    evaluatedBlocks: 1,
    detail: "",
  };
}

/** A RouteQuery for `model` with one block. */
export function routeQuery(model = "llama-3-8b"): RouteQuery {
  return {
    tenant: "tenant-a",
    model,
    hashScheme: "sha256-16",
    prefixHashes: [new Uint8Array([1, 2, 3])],
    candidateReplicaIds: [],
    maxHints: 0,
  };
}
