import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import type { CacheIndex } from "../../src/core/cache-index.js";
import type { CacheIndexOptions } from "../../src/core/cache-index-options.js";
import { IndexError } from "../../src/core/index-error.js";
import type {
  CacheEvent,
  CacheReport,
  ChainStoredEvent,
  EventBatch,
  PrefixEntry,
  ReplicaStats,
  RouteQuery,
  StorageTier,
} from "../../src/core/types.js";
import { MAX_TOKEN_COUNT } from "../../src/core/types.js";
import { chainOf, hashOf } from "../support/hashes.js";
import { ManualClock } from "../support/manual-clock.js";
import { ReferenceIndex } from "./reference-index.js";

const TTL = 120_000;
const SCHEME = "vllm-sha256_cbor-bs16";
const BLOCK = 16;

/** Prefix entries for a chain of hashes, `BLOCK` tokens per block. */
function entries(hashes: readonly Uint8Array[]): PrefixEntry[] {
  return hashes.map((prefixHash, i) => ({ prefixHash, tokenCount: (i + 1) * BLOCK }));
}

function stats(active: number, queued = 0, kvCacheUsage = 0.5): ReplicaStats {
  return { activeRequests: active, queuedRequests: queued, kvCacheUsage };
}

function report(overrides: Partial<CacheReport> = {}): CacheReport {
  return {
    tenant: "acme",
    model: "llama-3-8b",
    replicaId: "pod-a",
    hashScheme: SCHEME,
    prefixes: entries(chainOf(1, 4)),
    ...overrides,
  };
}

function batch(events: CacheEvent[], overrides: Partial<EventBatch> = {}): EventBatch {
  return {
    tenant: "acme",
    model: "llama-3-8b",
    replicaId: "pod-a",
    hashScheme: SCHEME,
    events,
    ...overrides,
  };
}

function query(overrides: Partial<RouteQuery> = {}): RouteQuery {
  return {
    tenant: "acme",
    model: "llama-3-8b",
    hashScheme: SCHEME,
    prefixHashes: chainOf(1, 4),
    candidateReplicaIds: [],
    maxHints: 0,
    ...overrides,
  };
}

function ids(index: CacheIndex, q: Partial<RouteQuery> = {}): string[] {
  return index.lookup(query(q)).hints.map((h) => h.replicaId);
}

function thrownBy(fn: () => unknown): IndexError {
  try {
    fn();
  } catch (error) {
    if (error instanceof IndexError) return error;
    throw error;
  }
  throw new Error("expected an IndexError");
}

/**
 * The behaviour every {@link CacheIndex} engine must show. Each engine's test file calls this with
 * its factory; a new engine is done when the whole suite passes unchanged.
 */
export function describeCacheIndexContract(
  engine: string,
  factory: (options: CacheIndexOptions) => CacheIndex,
): void {
  describe(`${engine}: the CacheIndex contract`, () => {
    let clock: ManualClock;
    let index: CacheIndex;

    beforeEach(() => {
      clock = new ManualClock();
      index = factory({ clock, ttlMs: TTL });
    });

    describe("reports", () => {
      it("finds a reported chain with its matched blocks and tokens", () => {
        const outcome = index.report(report());
        expect(outcome.accepted).toBe(4);
        const answer = index.lookup(query());
        expect(answer.reason).toBe("prefix-match");
        expect(answer.hints).toEqual([
          {
            replicaId: "pod-a",
            matchedBlocks: 4,
            matchedTokens: 64,
            freshness: 1,
            tier: "gpu",
            score: 64,
            stats: undefined,
          },
        ]);
        expect(answer.evaluatedBlocks).toBe(4);
        expect(answer.chainTruncated).toBe(false);
      });

      it("takes a negative or NaN token count for unknown", () => {
        index.report(report());
        const bad = chainOf(1, 4).map((prefixHash, i) => ({
          prefixHash,
          tokenCount: i % 2 === 0 ? -1 : Number.NaN,
        }));
        index.report(report({ prefixes: bad }));
        index.report(report());
        expect(index.size().entries).toBe(4);
        expect(index.lookup(query()).hints[0]).toMatchObject({
          matchedBlocks: 4,
          matchedTokens: 64,
        });
      });

      it(`takes a token count above ${MAX_TOKEN_COUNT} as ${MAX_TOKEN_COUNT}`, () => {
        index.report(report({ prefixes: [{ prefixHash: hashOf(1), tokenCount: 3e9 }] }));
        expect(index.lookup(query({ prefixHashes: [hashOf(1)] })).hints[0]).toMatchObject({
          matchedTokens: MAX_TOKEN_COUNT,
          score: MAX_TOKEN_COUNT,
        });
      });

      it("treats a report as a delta: a prefix absent from a later report stays", () => {
        index.report(report());
        index.report(report({ prefixes: entries(chainOf(1, 2)) }));
        expect(index.lookup(query()).hints[0]?.matchedBlocks).toBe(4);
        expect(index.size().entries).toBe(4);
      });

      it("is idempotent per (replica, scheme, prefix): re-reporting adds no entries", () => {
        index.report(report());
        index.report(report());
        index.report(report({ prefixes: [...entries(chainOf(1, 4)), ...entries(chainOf(1, 4))] }));
        expect(index.size().entries).toBe(4);
      });

      it("takes the latest token_count for a re-reported prefix", () => {
        index.report(report({ prefixes: [{ prefixHash: hashOf(1), tokenCount: 16 }] }));
        index.report(report({ prefixes: [{ prefixHash: hashOf(1), tokenCount: 32 }] }));
        expect(index.lookup(query({ prefixHashes: [hashOf(1)] })).hints[0]?.matchedTokens).toBe(32);
      });

      it("refreshes freshness when a prefix is re-reported", () => {
        index.report(report());
        clock.advance(TTL / 2);
        expect(index.lookup(query()).hints[0]?.freshness).toBeCloseTo(0.75);
        index.report(report());
        expect(index.lookup(query()).hints[0]?.freshness).toBe(1);
      });

      it("stores the reported stats and returns them with hints", () => {
        index.report(report({ stats: stats(3, 1, 0.25) }));
        expect(index.lookup(query()).hints[0]?.stats).toEqual(stats(3, 1, 0.25));
      });

      it("leaves a batch's last stats, however often its events change them, in ties too", () => {
        for (const replicaId of ["pod-a", "pod-b", "pod-c"]) {
          index.report(report({ replicaId, prefixes: entries(chainOf(1, 2)), stats: stats(5) }));
        }
        const swings: CacheEvent[] = [];
        for (let i = 0; i < 50; i++) {
          swings.push({ type: "replica-updated", stats: stats(i % 2 === 0 ? 0 : 4_294_967_295) });
        }
        swings.push({ type: "replica-updated", stats: stats(1) });
        index.publish(batch(swings, { replicaId: "pod-c" }));
        index.publish(batch(swings.slice(0, 50), { replicaId: "pod-b" })); // ends on the high load
        const hints = index.lookup(query({ prefixHashes: chainOf(1, 2) })).hints;
        expect(hints.map((h) => [h.replicaId, h.stats?.activeRequests])).toEqual([
          ["pod-c", 1],
          ["pod-a", 5],
          ["pod-b", 4_294_967_295],
        ]);
      });

      it("drops and counts prefixes reported without a scheme, but still applies the stats", () => {
        const outcome = index.report(report({ hashScheme: "", stats: stats(7) }));
        expect(outcome.accepted).toBe(0);
        expect(outcome.dropped["hash-scheme-missing"]).toBe(4);
        expect(index.size().entries).toBe(0);
        const state = index.describe({ tenant: "acme", model: "llama-3-8b" });
        expect(state.replicas).toEqual([
          { replicaId: "pod-a", stats: stats(7), prefixCount: 0, lastSeenAt: clock.now() },
        ]);
      });

      it("drops an empty or over-long prefix hash and applies the rest", () => {
        const outcome = index.report(
          report({
            prefixes: [
              { prefixHash: new Uint8Array(0), tokenCount: 16 },
              { prefixHash: new Uint8Array(65), tokenCount: 16 },
              { prefixHash: new Uint8Array(64).fill(7), tokenCount: 16 },
              { prefixHash: hashOf(1), tokenCount: 16 },
            ],
          }),
        );
        expect(outcome.accepted).toBe(2);
        expect(outcome.dropped["prefix-hash-empty"]).toBe(1);
        expect(outcome.dropped["prefix-hash-too-long"]).toBe(1);
        expect(index.size().entries).toBe(2);
      });

      it("leaves no trace of a scheme when every prefix reported under it was dropped", () => {
        index.report(report({ prefixes: [{ prefixHash: new Uint8Array(0), tokenCount: 16 }] }));
        expect(index.describe({ tenant: "acme", model: "llama-3-8b" }).hashSchemes).toEqual([]);
        expect(index.lookup(query()).detail).toBe("no entries for this tenant and model");
      });

      it("keeps a prefix whose caller later reuses the array it reported", () => {
        const hash = hashOf(1);
        index.report(report({ prefixes: [{ prefixHash: hash, tokenCount: 16 }] }));
        hash.fill(0xff);
        expect(ids(index, { prefixHashes: [hashOf(1)] })).toEqual(["pod-a"]);
      });

      it("takes a replica's writes under at most 8 schemes, counting the rest as dropped", () => {
        for (let s = 0; s < 8; s++) index.report(report({ hashScheme: `s${s}` }));
        const outcome = index.report(report({ hashScheme: "s8", stats: stats(2) }));
        expect(outcome.accepted).toBe(0);
        expect(outcome.dropped["too-many-hash-schemes"]).toBe(4);
        expect(index.lookup(query({ hashScheme: "s8" })).hints).toEqual([]);
        expect(index.lookup(query({ hashScheme: "s7" })).hints[0]?.stats).toEqual(stats(2));
        // Another replica has schemes of its own, and the same one takes more writes under its 8.
        expect(index.report(report({ replicaId: "pod-b", hashScheme: "s8" })).accepted).toBe(4);
        expect(
          index.report(report({ hashScheme: "s0", prefixes: entries(chainOf(9, 1)) })),
        ).toMatchObject({
          accepted: 1,
        });
        const added = index.publish(
          batch([{ type: "prefix-added", prefixes: entries(chainOf(1, 2)) }], { hashScheme: "s9" }),
        );
        expect(added.dropped["too-many-hash-schemes"]).toBe(2);
        // A scheme it no longer holds anything under makes room for another.
        index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(1, 4)) }], {
            hashScheme: "s3",
          }),
        );
        expect(index.report(report({ hashScheme: "s8" })).accepted).toBe(4);
        expect(ids(index, { hashScheme: "s8" }).sort()).toEqual(["pod-a", "pod-b"]);
      });

      it.each([
        ["tenant", { tenant: "" }],
        ["model", { model: "" }],
        ["replica_id", { replicaId: "" }],
        ["stats.active_requests", { stats: stats(Number.NaN) }],
        ["stats.active_requests", { stats: stats(-1) }],
        ["stats.active_requests", { stats: stats(1.5) }],
        ["stats.queued_requests", { stats: stats(0, Number.POSITIVE_INFINITY) }],
        ["stats.kv_cache_usage", { stats: stats(0, 0, Number.NaN) }],
        ["stats.kv_cache_usage", { stats: stats(0, 0, Number.NEGATIVE_INFINITY) }],
        ["stats.kv_cache_usage", { stats: stats(0, 0, -0.1) }],
        ["stats.kv_cache_usage", { stats: stats(0, 0, 1.01) }],
        ["tenant", { tenant: "t".repeat(257) }],
        ["hash_scheme", { hashScheme: "s".repeat(257) }],
      ] as const)("rejects a report with a bad %s and changes nothing", (field, overrides) => {
        index.report(report({ replicaId: "pod-b", prefixes: entries(chainOf(100, 2)) }));
        const before = index.describe({ tenant: "acme", model: "llama-3-8b" });
        const error = thrownBy(() => index.report(report(overrides)));
        expect(error.reason).toBe("invalid-argument");
        expect(error.field).toBe(field);
        expect(error.message).toContain(field);
        expect(index.describe({ tenant: "acme", model: "llama-3-8b" })).toEqual(before);
        expect(index.size().entries).toBe(2);
      });
    });

    describe("ttl", () => {
      it("returns an entry whose age is exactly the ttl", () => {
        index.report(report());
        clock.advance(TTL);
        const hint = index.lookup(query()).hints[0];
        expect(hint?.matchedBlocks).toBe(4);
        expect(hint?.freshness).toBe(0.5);
      });

      it("never returns an entry older than the ttl, even before a sweep", () => {
        index.report(report());
        clock.advance(TTL + 1);
        const answer = index.lookup(query());
        expect(answer.reason).toBe("no-hint");
        expect(answer.hints).toEqual([]);
      });

      it("never returns or keeps an entry older than the ttl by a fraction of a millisecond", () => {
        clock.advance(0.9);
        index.report(report());
        clock.advance(TTL + 0.05);
        expect(index.lookup(query()).reason).toBe("no-hint");
        index.sweep(1_000);
        expect(index.size().entries).toBe(0);
      });

      it("stops a match at the first expired block", () => {
        index.report(report());
        clock.advance(TTL / 2);
        index.report(report({ prefixes: entries(chainOf(1, 2)) }));
        clock.advance(TTL / 2 + 1);
        expect(index.lookup(query()).hints[0]?.matchedBlocks).toBe(2);
      });

      it("removes expired entries and drained scopes on a sweep", () => {
        index.report(report({ stats: stats(1) }));
        clock.advance(TTL + 1);
        const outcome = index.sweep(1_000);
        expect(outcome).toEqual({
          expiredEntries: 4,
          renewedEntries: 0,
          removedReplicas: 1,
          done: true,
        });
        expect(index.size()).toEqual({ entries: 0, entriesByModel: new Map(), replicas: 0 });
        expect(index.describe({ tenant: "acme", model: "llama-3-8b" }).replicas).toEqual([]);
      });

      it("sweeps no live entry", () => {
        index.report(report({ prefixes: entries(chainOf(1, 2)) }));
        clock.advance(TTL);
        index.report(report({ replicaId: "pod-b", prefixes: entries(chainOf(1, 2)) }));
        clock.advance(1);
        expect(index.sweep(1_000).expiredEntries).toBe(2);
        expect(ids(index, { prefixHashes: chainOf(1, 2) })).toEqual(["pod-b"]);
      });

      it("counts silent replicas it removes against the same budget", () => {
        for (const name of ["a", "b", "c"]) index.report(report({ replicaId: name, prefixes: [] }));
        clock.advance(TTL + 1);
        expect(index.sweep(2)).toEqual({
          expiredEntries: 0,
          renewedEntries: 0,
          removedReplicas: 2,
          done: false,
        });
        expect(index.sweep(2)).toEqual({
          expiredEntries: 0,
          renewedEntries: 0,
          removedReplicas: 1,
          done: true,
        });
      });

      it("sweeps at most its budget per step and says when it stopped early", () => {
        index.report(report());
        clock.advance(TTL + 1);
        expect(index.sweep(3)).toMatchObject({ expiredEntries: 3, done: false });
        expect(index.sweep(3)).toMatchObject({ expiredEntries: 1, done: true });
        expect(index.size().entries).toBe(0);
      });

      it("keeps a replica that was heard from recently even if it holds nothing", () => {
        index.report(report());
        clock.advance(TTL);
        index.publish(batch([{ type: "replica-updated", stats: stats(2) }]));
        clock.advance(1);
        expect(index.sweep(1_000)).toEqual({
          expiredEntries: 4,
          renewedEntries: 0,
          removedReplicas: 0,
          done: true,
        });
        expect(index.describe({ tenant: "acme", model: "llama-3-8b" }).replicas).toHaveLength(1);
      });
    });

    describe("the replica cap", () => {
      beforeEach(() => {
        index = factory({ clock, ttlMs: TTL, maxReplicas: 2 });
      });

      it("refuses a write that would add a replica past the cap, changing nothing", () => {
        index.report(report({ replicaId: "pod-a", prefixes: entries(chainOf(1, 2)) }));
        index.report(report({ tenant: "other", replicaId: "pod-b", prefixes: [] }));
        const refused = (write: () => unknown) => {
          try {
            write();
          } catch (error) {
            return error;
          }
          return undefined;
        };
        for (const write of [
          () => index.report(report({ replicaId: "pod-c", prefixes: entries(chainOf(5, 1)) })),
          () => index.report(report({ tenant: "new", replicaId: "pod-a", prefixes: [] })),
          () => index.publish(batch([{ type: "all-cleared" }], { replicaId: "pod-c" })),
        ]) {
          expect(refused(write)).toMatchObject({
            reason: "resource-exhausted",
            field: "replica_id",
            message: expect.stringContaining("2 replicas"),
          });
        }
        expect(index.size()).toMatchObject({ entries: 2, replicas: 2 });
        expect(index.describe({ tenant: "new", model: "llama-3-8b" }).replicas).toEqual([]);
        // Replicas it knows still write.
        index.report(report({ replicaId: "pod-a", prefixes: entries(chainOf(1, 3)) }));
        expect(index.size().entries).toBe(3);
      });

      it("takes a new replica once one has gone", () => {
        index.report(report({ replicaId: "pod-a", prefixes: [] }));
        index.report(report({ replicaId: "pod-b", prefixes: [] }));
        clock.advance(TTL + 1);
        index.sweep(100); // silent past the TTL, holding nothing: removed
        index.report(report({ replicaId: "pod-c", prefixes: entries(chainOf(1, 1)) }));
        expect(ids(index, { prefixHashes: chainOf(1, 1) })).toEqual(["pod-c"]);
      });
    });

    describe("the entry cap", () => {
      beforeEach(() => {
        index = factory({ clock, ttlMs: TTL, maxEntries: 4 });
      });

      it("never holds more entries than the cap", () => {
        for (let i = 0; i < 10; i++) {
          index.report(report({ replicaId: `pod-${i}`, prefixes: entries(chainOf(i * 10, 3)) }));
          expect(index.size().entries).toBeLessThanOrEqual(4);
        }
        expect(index.size().entries).toBe(4);
      });

      it("evicts the least recently confirmed entries first, and counts them", () => {
        index.report(report({ prefixes: entries(chainOf(1, 2)) }));
        clock.advance(1);
        index.report(report({ replicaId: "pod-b", prefixes: entries(chainOf(1, 2)) }));
        clock.advance(1);
        index.report(report({ prefixes: entries(chainOf(1, 2)) })); // pod-a confirmed again
        clock.advance(1);
        const outcome = index.report(
          report({ replicaId: "pod-c", prefixes: entries(chainOf(1, 2)) }),
        );
        expect(outcome.evicted.cap).toBe(2);
        expect(ids(index, { prefixHashes: chainOf(1, 2) }).sort()).toEqual(["pod-a", "pod-c"]);
      });

      it("evicts across tenants: the cap is one budget for the whole index", () => {
        index.report(report({ tenant: "old", prefixes: entries(chainOf(1, 4)) }));
        clock.advance(1);
        index.report(report({ tenant: "new", prefixes: entries(chainOf(1, 1)) }));
        expect(index.size().entries).toBe(4);
        expect(index.lookup(query({ tenant: "old" })).hints[0]?.matchedBlocks).toBe(3);
        expect(ids(index, { tenant: "new", prefixHashes: chainOf(1, 1) })).toEqual(["pod-a"]);
      });

      it("counts entries it pushes out that had already expired as ttl, not cap", () => {
        index.report(report({ prefixes: entries(chainOf(1, 4)) }));
        clock.advance(TTL + 1);
        const outcome = index.report(
          report({ replicaId: "pod-b", prefixes: entries(chainOf(1, 1)) }),
        );
        expect(outcome.evicted).toMatchObject({ ttl: 1, cap: 0 });
      });

      it("evicts the deepest blocks of one write's chain first among entries confirmed together", () => {
        index.report(report({ prefixes: entries(chainOf(1, 4)) }));
        index.report(report({ replicaId: "pod-b", prefixes: entries(chainOf(50, 2)) }));
        // pod-a's chain lost its tail, not its head: it still matches a run from block 0.
        expect(index.lookup(query()).hints[0]?.matchedBlocks).toBe(2);
      });
    });

    describe("isolation", () => {
      it.each([
        ["tenant", { tenant: "other" }],
        ["model", { model: "other" }],
        ["hash scheme", { hashScheme: "xxhash-bs16" }],
      ] as const)("never shows one %s's entries to another", (_, scope) => {
        index.report(report());
        expect(index.lookup(query(scope)).hints).toEqual([]);
        index.report(report({ ...scope, replicaId: "pod-z" }));
        expect(ids(index, scope)).toEqual(["pod-z"]);
        expect(ids(index)).toEqual(["pod-a"]);
      });

      it("keeps stats per (tenant, model)", () => {
        index.report(report({ stats: stats(1) }));
        index.report(report({ tenant: "other", stats: stats(9) }));
        expect(index.lookup(query()).hints[0]?.stats).toEqual(stats(1));
        expect(index.lookup(query({ tenant: "other" })).hints[0]?.stats).toEqual(stats(9));
      });

      it("names the schemes present when the asked one has no entries", () => {
        index.report(report({ hashScheme: "xxhash-bs16" }));
        const answer = index.lookup(query());
        expect(answer.reason).toBe("no-hint");
        expect(answer.detail).toContain("xxhash-bs16");
      });

      it("lists at most 8 schemes present, the first in sort order, and counts the rest", () => {
        // Reported in reverse order, one replica each (a replica may hold at most 8 schemes).
        for (let i = 19; i >= 0; i--) {
          const hashScheme = `s-${String(i).padStart(2, "0")}`;
          index.report(report({ replicaId: `pod-${i}`, hashScheme }));
        }
        const listed = "s-00, s-01, s-02, s-03, s-04, s-05, s-06, s-07";
        expect(index.lookup(query()).detail).toBe(
          `no entries under this hash_scheme; schemes present: ${listed} and 12 more`,
        );
      });

      it("lists all of exactly 8 schemes present, with no count of more", () => {
        for (let i = 7; i >= 0; i--) {
          index.report(report({ replicaId: `pod-${i}`, hashScheme: `s-${i}` }));
        }
        expect(index.lookup(query()).detail).toBe(
          "no entries under this hash_scheme; schemes present: s-0, s-1, s-2, s-3, s-4, s-5, s-6, s-7",
        );
      });
    });

    describe("matching and ranking", () => {
      it("counts only the run of blocks held consecutively from the head", () => {
        const [b0, b1, b2, b3] = chainOf(1, 4) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
        index.report(report({ replicaId: "gap", prefixes: entries([b0, b1]) }));
        index.report(
          report({ replicaId: "gap", prefixes: [{ prefixHash: b3, tokenCount: 4 * BLOCK }] }),
        );
        index.report(report({ replicaId: "tail", prefixes: entries([b0, b1, b2, b3]).slice(1) }));
        const answer = index.lookup(query({ prefixHashes: [b0, b1, b2, b3] }));
        expect(answer.hints.map((h) => [h.replicaId, h.matchedBlocks, h.matchedTokens])).toEqual([
          ["gap", 2, 32],
        ]);
      });

      it("answers an exact-prefix lookup of one hash with that prefix's tokens", () => {
        index.report(report());
        const hints = index.lookup(query({ prefixHashes: [hashOf(3)] })).hints;
        expect(hints.map((h) => [h.matchedBlocks, h.matchedTokens])).toEqual([[1, 48]]);
        expect(index.lookup(query({ prefixHashes: [hashOf(9)] })).hints).toEqual([]);
      });

      it("ranks by matched tokens", () => {
        index.report(report({ replicaId: "short", prefixes: entries(chainOf(1, 2)) }));
        index.report(report({ replicaId: "long", prefixes: entries(chainOf(1, 3)) }));
        expect(ids(index)).toEqual(["long", "short"]);
      });

      it("ranks fresher knowledge first when matched tokens are equal", () => {
        index.report(report({ replicaId: "stale" }));
        clock.advance(10_000);
        index.report(report({ replicaId: "fresh" }));
        const [first, second] = index.lookup(query()).hints;
        expect(first?.replicaId).toBe("fresh");
        expect(second?.freshness).toBeLessThan(1);
        expect(second?.score).toBeCloseTo(64 * (1 - 10_000 / TTL / 2));
      });

      it("takes freshness from the stalest block of the matched run", () => {
        index.report(report());
        clock.advance(TTL / 2);
        index.report(report({ prefixes: entries(chainOf(1, 4)).slice(1) }));
        expect(index.lookup(query()).hints[0]?.freshness).toBeCloseTo(0.75);
      });

      it("can rank a deeper but staler match above a fresher, shallower one", () => {
        index.report(report({ replicaId: "deep", prefixes: entries(chainOf(1, 4)) }));
        clock.advance(TTL);
        index.report(report({ replicaId: "shallow", prefixes: entries(chainOf(1, 1)) }));
        expect(ids(index)).toEqual(["deep", "shallow"]); // 64 x 0.5 > 16 x 1
      });

      it("breaks score ties by lower load, then by replica id", () => {
        index.report(report({ replicaId: "c", stats: stats(1, 1) }));
        index.report(report({ replicaId: "b", stats: stats(1, 0) }));
        index.report(report({ replicaId: "a", stats: stats(2, 0) }));
        index.report(report({ replicaId: "d", stats: stats(0, 1) }));
        expect(ids(index)).toEqual(["b", "d", "a", "c"]);
      });

      it("is deterministic whatever the insertion order", () => {
        const names = ["r3", "r1", "r2", "r0"];
        for (const name of names) index.report(report({ replicaId: name }));
        const other = factory({ clock, ttlMs: TTL });
        for (const name of [...names].reverse()) other.report(report({ replicaId: name }));
        expect(ids(index)).toEqual(["r0", "r1", "r2", "r3"]);
        expect(ids(other)).toEqual(ids(index));
      });

      it("restricts hints to the candidate replicas when given", () => {
        for (const name of ["a", "b", "c"]) index.report(report({ replicaId: name }));
        expect(ids(index, { candidateReplicaIds: ["c", "a", "unknown"] })).toEqual(["a", "c"]);
        expect(index.lookup(query({ candidateReplicaIds: ["unknown"] })).reason).toBe("no-hint");
      });

      it("ranks candidates as without them, whichever hold the head, repeated or kept alive", () => {
        for (const name of ["a", "b", "c", "d", "e"]) {
          index.report(
            report({ replicaId: name, prefixes: entries(chainOf(1, name === "d" ? 2 : 4)) }),
          );
        }
        index.report(report({ replicaId: "no-head", prefixes: entries(chainOf(2, 3)) }));
        index.report(report({ replicaId: "other", prefixes: entries(chainOf(50, 2)) }));
        const lookup = (candidateReplicaIds: string[], maxHints = 0) =>
          index.lookup(query({ candidateReplicaIds, maxHints })).hints.map((h) => h.replicaId);
        // Duplicates count once; candidates not holding the head (or the scheme) cannot fill it.
        expect(lookup(["d", "d", "d", "b", "no-head", "other", "unknown"], 4)).toEqual(["b", "d"]);
        expect(lookup(["no-head", "other", "unknown"])).toEqual([]);
        expect(index.lookup(query({ candidateReplicaIds: ["no-head"] })).reason).toBe("no-hint");
        // Past the TTL, a kept-alive candidate still ranks; an expired one does not.
        index.keepAlive(
          { tenant: "acme", model: "llama-3-8b", replicaId: "e" },
          clock.now() + 10 * TTL,
        );
        clock.advance(TTL + 1);
        expect(lookup(["a", "e", "c"], 2)).toEqual(["e"]);
      });

      it("returns at most max_hints, and the default when it is 0", () => {
        index = factory({ clock, ttlMs: TTL, defaultMaxHints: 2 });
        for (const name of ["a", "b", "c"]) index.report(report({ replicaId: name }));
        expect(ids(index)).toEqual(["a", "b"]);
        expect(ids(index, { maxHints: 1 })).toEqual(["a"]);
        expect(ids(index, { maxHints: 3 })).toEqual(["a", "b", "c"]);
      });

      it("clamps max_hints to the index's limit", () => {
        index = factory({ clock, ttlMs: TTL, maxHintsLimit: 2 });
        for (const name of ["a", "b", "c"]) index.report(report({ replicaId: name }));
        expect(ids(index, { maxHints: 4_294_967_295 })).toEqual(["a", "b"]);
      });

      it("clamps the default hint count to the limit too", () => {
        index = factory({ clock, ttlMs: TTL, defaultMaxHints: 3, maxHintsLimit: 2 });
        for (const name of ["a", "b", "c"]) index.report(report({ replicaId: name }));
        expect(ids(index)).toEqual(["a", "b"]);
      });

      it("evaluates the head of a chain longer than the maximum and flags it", () => {
        index = factory({ clock, ttlMs: TTL, maxChainLength: 2 });
        index.report(report());
        const answer = index.lookup(query());
        expect(answer.chainTruncated).toBe(true);
        expect(answer.evaluatedBlocks).toBe(2);
        expect(answer.hints[0]?.matchedBlocks).toBe(2);
      });

      it("has no side effects: lookups do not refresh or reorder anything", () => {
        index = factory({ clock, ttlMs: TTL, maxEntries: 4 });
        index.report(report({ replicaId: "a", prefixes: entries(chainOf(1, 2)) }));
        clock.advance(1);
        index.report(report({ replicaId: "b", prefixes: entries(chainOf(1, 2)) }));
        clock.advance(TTL / 2);
        index.lookup(query({ prefixHashes: chainOf(1, 2) }));
        expect(index.lookup(query()).hints.map((h) => h.freshness)).toEqual([
          1 - TTL / 2 / TTL / 2,
          1 - (TTL / 2 + 1) / TTL / 2,
        ]);
        index.report(report({ replicaId: "c", prefixes: entries(chainOf(1, 2)) }));
        expect(ids(index, { prefixHashes: chainOf(1, 2) }).sort()).toEqual(["b", "c"]);
      });
    });

    describe("lookups fail open", () => {
      it.each([
        ["tenant", { tenant: "" }, "invalid-request"],
        ["model", { model: "" }, "invalid-request"],
        ["prefix_hashes", { prefixHashes: [] }, "invalid-request"],
        ["prefix_hashes[1]", { prefixHashes: [hashOf(1), new Uint8Array(0)] }, "invalid-request"],
        ["prefix_hashes[0]", { prefixHashes: [new Uint8Array(65)] }, "invalid-request"],
        ["", { hashScheme: "" }, "hash-scheme-missing"],
        ["max_hints", { maxHints: 1.5 }, "invalid-request"],
        ["max_hints", { maxHints: -1 }, "invalid-request"],
        ["max_hints", { maxHints: Number.NaN }, "invalid-request"],
      ] as const)(
        "answers a lookup with a bad %s with a reason, not an error",
        (field, q, reason) => {
          index.report(report());
          const answer = index.lookup(query(q));
          expect(answer.reason).toBe(reason);
          expect(answer.invalidField).toBe(field);
          expect(answer.hints).toEqual([]);
        },
      );

      it("answers no-hint for a scope it has never seen", () => {
        expect(index.lookup(query()).reason).toBe("no-hint");
      });
    });

    describe("answers and reuse", () => {
      beforeEach(() => {
        index.report(report({ replicaId: "long", stats: stats(2) }));
        index.report(report({ replicaId: "short", prefixes: entries(chainOf(1, 2)) }));
      });

      it("leaves an answer kept by the caller as it was, whatever lookups follow", () => {
        const kept = index.lookup(query());
        const copy = structuredClone(kept);
        index.lookup(query({ prefixHashes: chainOf(1, 2) }), true);
        index.lookup(query({ prefixHashes: chainOf(1, 1) }));
        expect(kept).toEqual(copy);
        expect(kept.hints.map((h) => h.replicaId)).toEqual(["long", "short"]);
      });

      it("answers a lookup that lets its answer be reused as one that does not", () => {
        const queries = [
          query(),
          query({ prefixHashes: chainOf(1, 2) }),
          query({ maxHints: 1 }),
          query({ candidateReplicaIds: ["short"] }),
          query({ prefixHashes: chainOf(50, 2) }),
          query({ tenant: "" }),
          query(),
        ];
        const fresh = queries.map((q) => structuredClone(index.lookup(q)));
        // Each reused answer is read before the next lookup, as the contract asks of the caller.
        const reused = queries.map((q) => structuredClone(index.lookup(q, true)));
        expect(reused).toEqual(fresh);
      });
    });

    describe("events", () => {
      it("applies additions with a scheme, and ignores and counts them without one", () => {
        const outcome = index.publish(
          batch([{ type: "prefix-added", prefixes: entries(chainOf(1, 4)) }], { hashScheme: "" }),
        );
        expect(outcome).toMatchObject({ applied: 0, ignored: 1 });
        expect(outcome.dropped["hash-scheme-missing"]).toBe(1);
        const added = index.publish(
          batch([{ type: "prefix-added", prefixes: entries(chainOf(1, 4)) }]),
        );
        expect(added).toMatchObject({ applied: 1, ignored: 0, addedPrefixes: 4 });
        expect(ids(index)).toEqual(["pod-a"]);
      });

      it("evicts within the given scheme only", () => {
        index.report(report());
        index.report(report({ hashScheme: "other" }));
        const outcome = index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(2, 1)) }]),
        );
        expect(outcome.evicted.event).toBe(1);
        expect(index.lookup(query()).hints[0]?.matchedBlocks).toBe(1);
        expect(index.lookup(query({ hashScheme: "other" })).hints[0]?.matchedBlocks).toBe(4);
      });

      it("evicts in every scheme when none is given", () => {
        index.report(report());
        index.report(report({ hashScheme: "other" }));
        index.report(report({ replicaId: "pod-b" }));
        index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(1, 1)) }], { hashScheme: "" }),
        );
        expect(ids(index)).toEqual(["pod-b"]);
        expect(ids(index, { hashScheme: "other" })).toEqual([]);
      });

      it("refreshes stats and liveness on replica-updated, but not the entries' ttl", () => {
        index.report(report({ stats: stats(1) }));
        clock.advance(TTL);
        index.publish(batch([{ type: "replica-updated", stats: stats(5) }]));
        expect(index.lookup(query()).hints[0]?.stats).toEqual(stats(5));
        clock.advance(1);
        expect(index.lookup(query()).hints).toEqual([]);
        expect(
          index.describe({ tenant: "acme", model: "llama-3-8b" }).replicas[0]?.lastSeenAt,
        ).toBe(clock.now() - 1);
      });

      it("clears everything a replica holds under (tenant, model), in every scheme", () => {
        index.report(report());
        index.report(report({ hashScheme: "other" }));
        index.report(report({ replicaId: "pod-b" }));
        index.report(report({ model: "other-model" }));
        index.report(report({ tenant: "other-tenant" }));
        const outcome = index.publish(batch([{ type: "all-cleared" }], { hashScheme: "" }));
        expect(outcome.evicted.cleared).toBe(8);
        expect(ids(index)).toEqual(["pod-b"]);
        expect(ids(index, { hashScheme: "other" })).toEqual([]);
        expect(ids(index, { model: "other-model" })).toEqual(["pod-a"]);
        expect(ids(index, { tenant: "other-tenant" })).toEqual(["pod-a"]);
      });

      it("ignores and counts events of an unknown type, applying the rest", () => {
        const outcome = index.publish(
          batch([{ type: "unknown" }, { type: "prefix-added", prefixes: entries(chainOf(1, 4)) }]),
        );
        expect(outcome).toMatchObject({ applied: 1, ignored: 1 });
        expect(outcome.dropped["unknown-event-type"]).toBe(1);
        expect(ids(index)).toEqual(["pod-a"]);
      });

      it("applies events in order", () => {
        const chain = entries(chainOf(1, 4));
        index.publish(
          batch([
            { type: "prefix-added", prefixes: chain },
            { type: "prefix-evicted", prefixes: chain },
          ]),
        );
        expect(ids(index)).toEqual([]);
        index.publish(batch([{ type: "all-cleared" }, { type: "prefix-added", prefixes: chain }]));
        expect(ids(index)).toEqual(["pod-a"]);
      });

      it("rejects a batch with bad stats before applying any of it", () => {
        const error = thrownBy(() =>
          index.publish(
            batch([
              { type: "prefix-added", prefixes: entries(chainOf(1, 4)) },
              { type: "replica-updated", stats: stats(0, 0, Number.NaN) },
            ]),
          ),
        );
        expect(error.field).toBe("events[1].stats.kv_cache_usage");
        expect(index.size().entries).toBe(0);
      });
    });

    describe("storage tiers", () => {
      const added = (tier: StorageTier, prefixes = entries(chainOf(1, 4))): CacheEvent => ({
        type: "prefix-added",
        prefixes,
        tier,
      });

      it("reports the tier of a match and weighs its score by it", () => {
        index.publish(batch([added("cpu")]));
        const hint = index.lookup(query()).hints[0];
        expect(hint).toMatchObject({ matchedTokens: 64, tier: "cpu", freshness: 1 });
        expect(hint?.score).toBeCloseTo(64 * 0.8);
      });

      it("adds prefixes on the gpu tier unless an event says otherwise", () => {
        index.report(report());
        index.publish(batch([{ type: "prefix-added", prefixes: entries(chainOf(1, 4)) }]));
        expect(index.lookup(query()).hints[0]?.tier).toBe("gpu");
      });

      it("ranks a gpu match above an equal match on disk", () => {
        index.publish(batch([added("disk")], { replicaId: "pod-a" }));
        index.publish(batch([added("gpu")], { replicaId: "pod-b" }));
        expect(ids(index)).toEqual(["pod-b", "pod-a"]);
      });

      it("can rank a deeper cpu match above a shallower gpu one", () => {
        index.publish(batch([added("cpu")], { replicaId: "pod-a" }));
        index.publish(batch([added("gpu", entries(chainOf(1, 2)))], { replicaId: "pod-b" }));
        expect(ids(index)).toEqual(["pod-a", "pod-b"]);
      });

      it("scores a replica passed over at a deep block by its whole run, not by its head", () => {
        // Token counts that do not grow with depth, so that a stale deep block can be passed
        // over while the head block alone would still outscore the best hint.
        const [head, tail] = chainOf(1, 2) as [Uint8Array, Uint8Array];
        const chain = [
          { prefixHash: head, tokenCount: 100 },
          { prefixHash: tail, tokenCount: 110 },
        ];
        index.report(report({ replicaId: "stale-tail", prefixes: chain }));
        clock.advance(TTL / 2);
        index.publish(batch([added("cpu", chain)], { replicaId: "on-cpu" })); // 110 x 1 x 0.8
        index.report(report({ replicaId: "stale-tail", prefixes: chain.slice(0, 1) }));
        const q = { prefixHashes: [head, tail], maxHints: 1 };
        // stale-tail: 110 x 0.75 = 82.5 over both blocks; its head alone would score 100.
        expect(index.lookup(query(q)).hints).toMatchObject([{ replicaId: "on-cpu", score: 88 }]);
        expect(index.lookup(query({ ...q, maxHints: 2 })).hints[1]).toMatchObject({
          replicaId: "stale-tail",
          matchedBlocks: 2,
          score: 82.5,
        });
      });

      it("takes the slowest tier of the run, each block at the best tier it is on", () => {
        index.publish(batch([added("gpu"), added("disk", entries(chainOf(1, 2)))]));
        expect(index.lookup(query()).hints[0]?.tier).toBe("gpu");
        expect(index.lookup(query()).hints[0]?.matchedBlocks).toBe(4);
        index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(1, 2)), tier: "gpu" }]),
        );
        const hint = index.lookup(query()).hints[0];
        expect(hint).toMatchObject({ matchedBlocks: 4, tier: "disk" });
        expect(hint?.score).toBeCloseTo(64 * 0.5);
      });

      it("takes the later tier in gpu, cpu, disk, other order when the run's weakest tiers weigh alike", () => {
        // disk and other both weigh 0.5: the run counts at "other", whichever block is on it and
        // whichever way an engine reads the run.
        const [b0, b1, b2, b3] = chainOf(1, 4) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
        const on = (tier: StorageTier, hash: Uint8Array, d: number) =>
          added(tier, [{ prefixHash: hash, tokenCount: (d + 1) * BLOCK }]);
        index.publish(batch([on("disk", b0, 0), on("other", b1, 1)], { replicaId: "a" }));
        index.publish(batch([on("other", b0, 0), on("disk", b1, 1)], { replicaId: "b" }));
        // A run with a gap: b2 is held by someone else only, b3 by "a" again.
        index.report(
          report({ replicaId: "c", prefixes: [{ prefixHash: b2, tokenCount: 3 * BLOCK }] }),
        );
        index.publish(batch([on("gpu", b3, 3)], { replicaId: "a" }));
        for (const prefixHashes of [
          [b0, b1],
          [b0, b1, b2],
          [b0, b1, b2, b3],
        ]) {
          for (const replica of ["a", "b"]) {
            const hints = index.lookup(
              query({ prefixHashes, candidateReplicaIds: [replica] }),
            ).hints;
            expect(hints).toMatchObject([{ matchedBlocks: 2, tier: "other" }]);
          }
        }
      });

      it("keeps a block evicted from one tier while it is on another", () => {
        index.publish(batch([added("gpu"), added("cpu")]));
        expect(index.size().entries).toBe(4);
        const outcome = index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(1, 4)), tier: "gpu" }]),
        );
        expect(outcome.evicted.event).toBe(0);
        expect(index.lookup(query()).hints[0]).toMatchObject({ matchedBlocks: 4, tier: "cpu" });
        index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(1, 4)), tier: "cpu" }]),
        );
        expect(index.size().entries).toBe(0);
      });

      it("evicts from every tier when an eviction names none", () => {
        index.publish(batch([added("gpu"), added("cpu")]));
        const outcome = index.publish(
          batch([{ type: "prefix-evicted", prefixes: entries(chainOf(1, 4)) }]),
        );
        expect(outcome.evicted.event).toBe(4);
        expect(index.size().entries).toBe(0);
      });

      it("clears one tier, or every tier when the clear names none", () => {
        index.publish(batch([added("gpu"), added("cpu", entries(chainOf(1, 2)))]));
        const outcome = index.publish(batch([{ type: "all-cleared", tier: "gpu" }]));
        expect(outcome.evicted.cleared).toBe(2);
        expect(index.lookup(query()).hints[0]).toMatchObject({ matchedBlocks: 2, tier: "cpu" });
        index.publish(batch([{ type: "all-cleared" }]));
        expect(index.size().entries).toBe(0);
      });

      it("applies a batch's tier clears and additions in order, each clear to what is there then", () => {
        const outcome = index.publish(
          batch([
            added("gpu"),
            added("cpu", entries(chainOf(1, 2))),
            { type: "all-cleared", tier: "cpu" },
            added("cpu", entries(chainOf(1, 3))),
            { type: "all-cleared", tier: "gpu" },
            { type: "all-cleared", tier: "gpu" },
            added("disk", entries(chainOf(1, 1))),
            { type: "all-cleared", tier: "cpu" },
            added("gpu", entries(chainOf(1, 1))),
            { type: "all-cleared", tier: "disk" },
          ]),
        );
        // gpu 1-4 and cpu 1-2; cpu cleared; cpu 1-3; gpu cleared (block 4 goes); disk 1;
        // cpu cleared (blocks 2 and 3 go, 1 stays on disk); gpu 1; disk cleared: gpu 1 is left.
        expect(outcome.evicted.cleared).toBe(3);
        expect(index.size().entries).toBe(1);
        expect(index.lookup(query()).hints[0]).toMatchObject({ matchedBlocks: 1, tier: "gpu" });
      });

      it("clears a tier in every scheme of a batch's replica, after a clear that found it empty", () => {
        index.publish(batch([added("cpu")], { hashScheme: "other" }));
        index.publish(
          batch([
            { type: "all-cleared", tier: "cpu" },
            added("cpu", entries(chainOf(1, 2))),
            { type: "all-cleared", tier: "cpu" },
          ]),
        );
        expect(index.size().entries).toBe(0);
      });

      it("uses the configured tier weights", () => {
        index = factory({ clock, ttlMs: TTL, tierWeights: { disk: 0.25 } });
        index.publish(batch([added("disk")]));
        expect(index.lookup(query()).hints[0]?.score).toBeCloseTo(16);
      });
    });

    describe("chain-stored events", () => {
      const stored = (
        parent: number | undefined,
        first: number,
        length: number,
        extra: Partial<ChainStoredEvent> = {},
      ): ChainStoredEvent => ({
        type: "chain-stored",
        parentHash: parent === undefined ? undefined : hashOf(parent),
        prefixHashes: chainOf(first, length),
        blockSize: BLOCK,
        knownBlocksOnly: false,
        ...extra,
      });
      const tokensAt = (n: number, hashes = chainOf(1, n)) =>
        index.lookup(query({ prefixHashes: hashes })).hints[0]?.matchedTokens;

      it("counts tokens from the root when the chain has no parent", () => {
        const outcome = index.publish(batch([stored(undefined, 1, 3)]));
        expect(outcome).toMatchObject({ applied: 1, addedPrefixes: 3 });
        expect(tokensAt(3)).toBe(48);
      });

      it("continues the count of a known parent", () => {
        index.publish(batch([stored(undefined, 1, 2), stored(2, 3, 2)]));
        expect(tokensAt(4)).toBe(64);
      });

      it("still indexes a chain whose parent is unknown, with unknown counts", () => {
        index.publish(batch([stored(99, 3, 2)]));
        expect(index.size().entries).toBe(2);
        expect(index.lookup(query({ prefixHashes: chainOf(3, 2) })).hints[0]).toMatchObject({
          matchedBlocks: 2,
          matchedTokens: 0,
        });
      });

      it("never overwrites a known count with an unknown one", () => {
        index.publish(batch([stored(undefined, 1, 4)], { replicaId: "pod-b" }));
        index.publish(batch([stored(99, 3, 2)]));
        expect(tokensAt(4)).toBe(64);
        index.report(report({ prefixes: [{ prefixHash: hashOf(4), tokenCount: 0 }] }));
        expect(tokensAt(4)).toBe(64);
      });

      it("adds an offload copy only for blocks the index knows, and counts the rest", () => {
        index.publish(batch([stored(undefined, 1, 2)], { replicaId: "pod-b" }));
        const outcome = index.publish(
          batch([stored(undefined, 1, 3, { tier: "cpu", knownBlocksOnly: true, blockSize: 0 })]),
        );
        expect(outcome.addedPrefixes).toBe(2);
        expect(outcome.dropped["unknown-block"]).toBe(1);
        const hint = index.lookup(query()).hints.find((h) => h.replicaId === "pod-a");
        expect(hint).toMatchObject({ matchedBlocks: 2, matchedTokens: 32, tier: "cpu" });
      });

      it("keeps the counts the blocks have when an offload copy names a block size", () => {
        // An offload copies blocks from the middle of a sequence but names no parent: counting
        // from the root would give block 5 of a chain the count of block 1.
        index.publish(batch([stored(undefined, 1, 6)]));
        index.publish(batch([stored(undefined, 1, 4)], { replicaId: "pod-b" }));
        const outcome = index.publish(
          batch([stored(undefined, 5, 2, { tier: "cpu", knownBlocksOnly: true })]),
        );
        expect(outcome.addedPrefixes).toBe(2);
        const hints = index.lookup(query({ prefixHashes: chainOf(1, 6) })).hints;
        expect(hints.map((h) => [h.replicaId, h.matchedBlocks, h.matchedTokens])).toEqual([
          ["pod-a", 6, 96],
          ["pod-b", 4, 64],
        ]);
      });

      it("ignores and counts a chain without a scheme", () => {
        const outcome = index.publish(batch([stored(undefined, 1, 2)], { hashScheme: "" }));
        expect(outcome).toMatchObject({ applied: 0, ignored: 1 });
        expect(outcome.dropped["hash-scheme-missing"]).toBe(1);
      });
    });

    describe("live streams", () => {
      const ref = { tenant: "acme", model: "llama-3-8b", replicaId: "pod-a" };

      it("keeps a live replica's entries past the ttl", () => {
        index.report(report());
        index.keepAlive(ref, clock.now() + 2 * TTL);
        clock.advance(TTL + 1);
        expect(index.lookup(query()).hints[0]).toMatchObject({ matchedBlocks: 4, freshness: 0.5 });
        expect(index.sweep(1_000)).toMatchObject({ expiredEntries: 0, renewedEntries: 4 });
        expect(index.lookup(query()).hints[0]).toMatchObject({ matchedBlocks: 4, freshness: 1 });
      });

      it("lets the ttl apply again once the replica is no longer kept alive", () => {
        index.report(report());
        index.keepAlive(ref, clock.now() + TTL / 2);
        clock.advance(TTL + 1);
        expect(index.lookup(query()).hints).toEqual([]);
        expect(index.sweep(1_000).expiredEntries).toBe(4);
      });

      it("expires renewed entries one ttl after their renewal once liveness ends", () => {
        index.report(report());
        index.keepAlive(ref, clock.now() + TTL + 10);
        clock.advance(TTL + 1);
        index.sweep(1_000);
        clock.advance(TTL);
        expect(index.lookup(query()).hints[0]?.matchedBlocks).toBe(4);
        clock.advance(1);
        expect(index.lookup(query()).hints).toEqual([]);
      });

      it("keeps only the live replica's entries, not its neighbours'", () => {
        index.report(report());
        index.report(report({ replicaId: "pod-b" }));
        index.keepAlive(ref, clock.now() + 2 * TTL);
        clock.advance(TTL + 1);
        expect(ids(index)).toEqual(["pod-a"]);
        expect(index.sweep(1_000)).toMatchObject({ expiredEntries: 4, renewedEntries: 4 });
      });

      it("still forgets silent replicas holding nothing while a live one's entries are renewed", () => {
        index.report(report());
        // pod-b says only that it exists, then falls silent.
        index.report(report({ replicaId: "pod-b", prefixes: [] }));
        for (let step = 0; step < 6; step++) {
          index.keepAlive(ref, clock.now() + 2 * TTL);
          clock.advance(TTL / 2);
          index.sweep(1_000);
        }
        const state = index.describe({ tenant: "acme", model: "llama-3-8b" });
        expect(state.replicas.map((r) => r.replicaId)).toEqual(["pod-a"]);
        // The renewals count as hearing from pod-a.
        expect(clock.now() - (state.replicas[0]?.lastSeenAt ?? 0)).toBeLessThanOrEqual(TTL / 2);
      });

      it("ignores keep-alives for a replica it does not know", () => {
        index.keepAlive({ ...ref, replicaId: "nobody" }, clock.now() + TTL);
        expect(index.size().replicas).toBe(0);
      });
    });

    describe("describe() and size()", () => {
      it("describes each replica, the totals and the schemes of a (tenant, model)", () => {
        index.report(report({ replicaId: "b", stats: stats(2) }));
        clock.advance(5);
        index.report(
          report({ replicaId: "a", hashScheme: "other", prefixes: entries(chainOf(1, 2)) }),
        );
        index.report(report({ tenant: "elsewhere" }));
        expect(index.describe({ tenant: "acme", model: "llama-3-8b" })).toEqual({
          replicas: [
            { replicaId: "a", stats: undefined, prefixCount: 2, lastSeenAt: clock.now() },
            { replicaId: "b", stats: stats(2), prefixCount: 4, lastSeenAt: clock.now() - 5 },
          ],
          totalEntries: 6,
          hashSchemes: [
            { hashScheme: "other", entries: 2 },
            { hashScheme: SCHEME, entries: 4 },
          ],
        });
        expect(
          index.describe({ tenant: "acme", model: "llama-3-8b", hashScheme: "other" }),
        ).toMatchObject({
          replicas: [
            { replicaId: "a", prefixCount: 2 },
            { replicaId: "b", prefixCount: 0 },
          ],
          totalEntries: 2,
          hashSchemes: [{ hashScheme: "other", entries: 2 }],
        });
      });

      it("rejects describe() without a tenant or model, or with an over-long scheme", () => {
        expect(thrownBy(() => index.describe({ tenant: "", model: "m" })).field).toBe("tenant");
        expect(thrownBy(() => index.describe({ tenant: "t", model: "" })).field).toBe("model");
        const longScheme = { tenant: "t", model: "m", hashScheme: "s".repeat(257) };
        expect(thrownBy(() => index.describe(longScheme)).field).toBe("hash_scheme");
      });

      it("counts entries per model across tenants and schemes", () => {
        index.report(report());
        index.report(report({ tenant: "other", hashScheme: "x" }));
        index.report(report({ model: "m2", prefixes: entries(chainOf(1, 1)) }));
        const size = index.size();
        expect(size.entries).toBe(9);
        expect([...size.entriesByModel].sort()).toEqual([
          ["llama-3-8b", 8],
          ["m2", 1],
        ]);
        expect(size.replicas).toBe(3);
      });
    });

    describe("against a reference model", () => {
      const TENANTS = ["t1", "t2"];
      const MODELS = ["m1", "m2"];
      const SCHEMES = ["s1", "s2"];
      const REPLICAS = ["a", "b", "c"];
      const name = (names: string[]) => fc.constantFrom(...names);
      const prefixList = fc.array(fc.nat(5), { minLength: 1, maxLength: 5 });
      type Operation =
        | { op: "advance"; ms: number }
        | { op: "sweep"; budget: number }
        | { op: "cleared" | "updated"; tenant: string; model: string; replica: string }
        | {
            op: "report" | "added" | "evicted";
            tenant: string;
            model: string;
            scheme: string;
            replica: string;
            prefixes: number[];
          };
      const operation: fc.Arbitrary<Operation> = fc.oneof(
        fc.record({ op: fc.constant("advance" as const), ms: fc.nat(30) }),
        fc.record({
          op: fc.constantFrom("report" as const, "added" as const, "evicted" as const),
          tenant: name(TENANTS),
          model: name(MODELS),
          scheme: fc.oneof(name(SCHEMES), fc.constant("")),
          replica: name(REPLICAS),
          prefixes: prefixList,
        }),
        fc.record({
          op: fc.constantFrom("cleared" as const, "updated" as const),
          tenant: name(TENANTS),
          model: name(MODELS),
          replica: name(REPLICAS),
        }),
        fc.record({ op: fc.constant("sweep" as const), budget: fc.integer({ min: 1, max: 6 }) }),
      );

      it("agrees on matches, counts, sweeps and cap evictions under random operations", () => {
        fc.assert(
          fc.property(
            // size "max": fast-check's default bias keeps arrays near 10 operations, too few to
            // fill a cap or expire much.
            fc.array(operation, { minLength: 20, maxLength: 150, size: "max" }),
            fc.constantFrom(1, 3, 12, 1_000),
            (operations, maxEntries) => {
              const clock = new ManualClock();
              const index = factory({ clock, ttlMs: 50, maxEntries });
              const model = new ReferenceIndex(50, maxEntries);
              for (const o of operations) {
                const now = clock.now();
                if (o.op === "advance") clock.advance(o.ms);
                else if (o.op === "sweep") {
                  expect(index.sweep(o.budget).expiredEntries).toBe(model.sweep(o.budget, now));
                } else if (!("prefixes" in o)) {
                  const type = o.op === "cleared" ? "all-cleared" : "replica-updated";
                  index.publish(
                    batch([{ type }], { tenant: o.tenant, model: o.model, replicaId: o.replica }),
                  );
                  if (o.op === "cleared") {
                    model.remove(
                      ([t, m, , , r]) => t === o.tenant && m === o.model && r === o.replica,
                    );
                  }
                } else {
                  const prefixes = o.prefixes.map((n) => ({ n, tokenCount: (n + 1) * 16 }));
                  const wire = prefixes.map((p) => ({
                    prefixHash: hashOf(p.n),
                    tokenCount: p.tokenCount,
                  }));
                  const scope = {
                    tenant: o.tenant,
                    model: o.model,
                    replicaId: o.replica,
                    hashScheme: o.scheme,
                  };
                  if (o.op === "report") index.report(report({ ...scope, prefixes: wire }));
                  else {
                    const type = o.op === "added" ? "prefix-added" : "prefix-evicted";
                    index.publish(batch([{ type, prefixes: wire }], scope));
                  }
                  if (o.op !== "evicted" && o.scheme !== "") {
                    model.add([o.tenant, o.model, o.scheme], o.replica, prefixes, now);
                  } else if (o.op === "evicted") {
                    const gone = new Set(o.prefixes.map(String));
                    model.remove(
                      ([t, m, sc, n, r]) =>
                        t === o.tenant &&
                        m === o.model &&
                        r === o.replica &&
                        (o.scheme === "" || sc === o.scheme) &&
                        gone.has(n as string),
                    );
                  }
                }
                expectSameState(index, model, clock.now());
              }
            },
          ),
          { numRuns: 60 },
        );
      });

      function expectSameState(index: CacheIndex, model: ReferenceIndex, now: number): void {
        expect(index.size().entries).toBe(model.entries.size);
        for (const tenant of TENANTS) {
          for (const m of MODELS) {
            const state = index.describe({ tenant, model: m });
            expect(state.totalEntries).toBe(model.count(tenant, m));
            for (const replica of state.replicas) {
              expect(replica.prefixCount).toBe(model.count(tenant, m, "*", "*", replica.replicaId));
            }
            for (const scheme of SCHEMES) {
              const scoped = index.describe({ tenant, model: m, hashScheme: scheme });
              expect(scoped.totalEntries).toBe(model.count(tenant, m, scheme));
              const answer = index.lookup(
                query({
                  tenant,
                  model: m,
                  hashScheme: scheme,
                  prefixHashes: chainOf(0, 4),
                  maxHints: 10,
                }),
              );
              const got = answer.hints.map(
                (h) => `${h.replicaId}:${h.matchedBlocks}:${h.matchedTokens}`,
              );
              expect(got.sort()).toEqual(
                model.matches([tenant, m, scheme], REPLICAS, [0, 1, 2, 3], now),
              );
            }
          }
        }
      }
    });
  });
}
