import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CacheIndex } from "../../src/core/cache-index.js";
import { createCompactCacheIndex } from "../../src/core/compact-cache-index.js";
import type { PrefixEntry, RouteAnswer } from "../../src/core/types.js";
import { hashOf } from "../support/hashes.js";
import { ManualClock } from "../support/manual-clock.js";
import { createMapCacheIndex } from "./map-cache-index.js";

const TENANT = "acme";
const MODEL = "m";
const TTL = 40;
/**
 * Chains share block 0 (a system prompt every request starts with) and branch below it, so that
 * block 0 has many holders and becomes hot, and lookups stop early only when that is exact.
 */
const BRANCHES = [
  [0, 1, 2, 3, 4, 5],
  [0, 1, 2, 30, 31],
  [0, 10, 11, 12],
  [0, 1, 20, 21, 22, 23, 24],
  // Long enough that a lookup resolves it in several windows (see CHAIN_WINDOWS).
  [0, 1, 2, 3, 4, 5, ...Array.from({ length: 34 }, (_, i) => 40 + i)],
];

/**
 * A chain announced block by block with parents (chain-stored events), with block size 16: hash
 * LINE + i covers (i + 1) x 16 tokens whenever its count is known.
 */
const LINE = 100;
const LINE_LENGTH = 8;

/** Token counts follow the hash (the compact engine keeps one count per block). */
function entriesOf(ids: readonly number[]): PrefixEntry[] {
  return ids.map((n) => ({ prefixHash: hashOf(n), tokenCount: (n + 1) * 16 }));
}

const replica = fc.integer({ min: 0, max: 69 }).map((n) => `r${n}`);
const tier = fc.constantFrom(undefined, "gpu" as const, "cpu" as const, "disk" as const);
const chain = fc
  .tuple(fc.constantFrom(...BRANCHES), fc.integer({ min: 1, max: 40 }))
  .map(([branch, length]): number[] => branch.slice(0, length));
const operation = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("report" as const),
      replica,
      chain,
      scheme: fc.constantFrom("s1", "s2"),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("add" as const), replica, chain, tier }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("stored" as const),
      replica,
      start: fc.integer({ min: 0, max: LINE_LENGTH - 1 }),
      length: fc.integer({ min: 1, max: 4 }),
      tier,
      knownBlocksOnly: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("alive" as const),
      replica,
      forMs: fc.integer({ min: -5, max: 60 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("evict" as const),
      replica,
      chain,
      scheme: fc.constantFrom("s1", ""),
      tier,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), replica, tier }) },
  {
    // Several events for one replica in one batch: tier clears between additions and evictions.
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("batch" as const),
      replica,
      events: fc.array(
        fc.oneof(
          fc.record({ type: fc.constant("prefix-added" as const), chain, tier }),
          fc.record({ type: fc.constant("prefix-evicted" as const), chain, tier }),
          fc.record({ type: fc.constant("all-cleared" as const), tier }),
        ),
        { minLength: 1, maxLength: 8 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 15 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("sweep" as const),
      budget: fc.integer({ min: 1, max: 50 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("lookup" as const),
      chain: fc.oneof(
        chain,
        fc.constant([0, 1, 2, 99] as number[]),
        fc.constant(Array.from({ length: LINE_LENGTH }, (_, i) => LINE + i)),
      ),
      scheme: fc.constantFrom("s1", "s2"),
      maxHints: fc.integer({ min: 0, max: 8 }),
      // Compared before the next operation, as the contract asks of a caller letting it reuse.
      reuse: fc.boolean(),
      candidates: fc.oneof(
        { weight: 4, arbitrary: fc.constant([] as string[]) },
        { weight: 1, arbitrary: fc.uniqueArray(replica, { maxLength: 6 }) },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("stats" as const),
      replica,
      active: fc.integer({ min: 0, max: 3 }),
    }),
  },
);

function apply(
  index: CacheIndex,
  clock: ManualClock,
  o: fc.Arbitrary<unknown> extends never ? never : Operation,
): unknown {
  const scope = { tenant: TENANT, model: MODEL };
  switch (o.op) {
    case "report":
      return index.report({
        ...scope,
        replicaId: o.replica,
        hashScheme: o.scheme,
        prefixes: entriesOf(o.chain),
      });
    case "add":
      return index.publish({
        ...scope,
        replicaId: o.replica,
        hashScheme: "s1",
        events: [{ type: "prefix-added", prefixes: entriesOf(o.chain), tier: o.tier }],
      });
    case "stored":
      return index.publish({
        ...scope,
        replicaId: o.replica,
        hashScheme: "s1",
        events: [
          {
            type: "chain-stored",
            parentHash: o.start === 0 ? undefined : hashOf(LINE + o.start - 1),
            prefixHashes: Array.from({ length: o.length }, (_, i) => hashOf(LINE + o.start + i)),
            blockSize: 16,
            tier: o.tier,
            knownBlocksOnly: o.knownBlocksOnly,
          },
        ],
      });
    case "alive":
      index.keepAlive({ ...scope, replicaId: o.replica }, clock.now() + o.forMs);
      return undefined;
    case "evict":
      return index.publish({
        ...scope,
        replicaId: o.replica,
        hashScheme: o.scheme,
        events: [{ type: "prefix-evicted", prefixes: entriesOf(o.chain), tier: o.tier }],
      });
    case "clear":
      return index.publish({
        ...scope,
        replicaId: o.replica,
        hashScheme: "",
        events: [{ type: "all-cleared", tier: o.tier }],
      });
    case "batch":
      return index.publish({
        ...scope,
        replicaId: o.replica,
        hashScheme: "s1",
        events: o.events.map((event) =>
          event.type === "all-cleared"
            ? event
            : { type: event.type, prefixes: entriesOf(event.chain), tier: event.tier },
        ),
      });
    case "stats":
      return index.publish({
        ...scope,
        replicaId: o.replica,
        hashScheme: "",
        events: [
          {
            type: "replica-updated",
            stats: { activeRequests: o.active, queuedRequests: 0, kvCacheUsage: 0 },
          },
        ],
      });
    case "sweep":
      return index.sweep(o.budget);
    case "lookup":
      return comparable(
        index.lookup(
          {
            ...scope,
            hashScheme: o.scheme,
            prefixHashes: o.chain.map((n) => hashOf(n)),
            candidateReplicaIds: o.candidates,
            maxHints: o.maxHints,
          },
          o.reuse,
        ),
      );
    case "advance":
      return undefined;
  }
}

type Operation = typeof operation extends fc.Arbitrary<infer T> ? T : never;

function comparable(answer: RouteAnswer) {
  return { ...answer, detail: answer.reason === "no-hint" ? "" : answer.detail };
}

describe("createCompactCacheIndex() against the v1 engine", () => {
  it.each([
    ["default hot thresholds", undefined],
    ["blocks turning hot and cold all the time", { hotPromote: 3, hotDemote: 2 }],
    ["every tie read in tie order too", { hotPromote: 3, hotDemote: 2, tieRunScale: 0 }],
  ])("answers every operation the same, with many replicas on shared blocks (%s)", (_, tuning) => {
    fc.assert(
      fc.property(
        fc.array(operation, { minLength: 50, maxLength: 400, size: "max" }),
        fc.constantFrom(20, 150, 100_000),
        (operations, maxEntries) => {
          const clock = new ManualClock();
          const compact = createCompactCacheIndex({ clock, ttlMs: TTL, maxEntries }, tuning);
          const reference = createMapCacheIndex({ clock, ttlMs: TTL, maxEntries });
          for (const o of operations) {
            if (o.op === "advance") {
              clock.advance(o.ms);
              continue;
            }
            expect(apply(compact, clock, o)).toEqual(apply(reference, clock, o));
            expect(compact.size()).toEqual(reference.size());
            expect(compact.consistencyProblems()).toEqual([]);
          }
          for (const scheme of [undefined, "s1", "s2"]) {
            const query = { tenant: TENANT, model: MODEL, hashScheme: scheme };
            expect(compact.describe(query)).toEqual(reference.describe(query));
          }
        },
      ),
      // No shrinking: a counterexample hundreds of operations long takes minutes to shrink.
      { numRuns: 120, endOnFailure: true },
    );
  });
});
