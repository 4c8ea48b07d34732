import { describe, expect, it } from "vitest";
import {
  type CompactIndexTuning,
  createCompactCacheIndex,
} from "../../src/core/compact-cache-index.js";
import { isCollected } from "../support/collected.js";
import { hashOf } from "../support/hashes.js";
import { ManualClock } from "../support/manual-clock.js";
import { describeCacheIndexContract } from "./cache-index-contract.js";
import { createMapCacheIndex } from "./map-cache-index.js";

describeCacheIndexContract("createCompactCacheIndex()", (options) =>
  createCompactCacheIndex(options),
);

const TTL = 1_000;
/** Low thresholds, so that a few replicas make a block hot. */
const HOT_AT_3: Partial<CompactIndexTuning> = { hotPromote: 3, hotDemote: 2 };
const scope = { tenant: "acme", model: "m", hashScheme: "s" };
const entriesOf = (ids: readonly number[]) =>
  ids.map((n) => ({ prefixHash: hashOf(n), tokenCount: (n + 1) * 16 }));

function setup(tuning?: Partial<CompactIndexTuning>, limits: { maxEntries?: number } = {}) {
  const clock = new ManualClock();
  const index = createCompactCacheIndex({ clock, ttlMs: TTL, ...limits }, tuning);
  const store = (replicaId: string, ids: number[]) =>
    index.report({
      ...scope,
      replicaId,
      prefixes: ids.map((n) => ({ prefixHash: hashOf(n), tokenCount: (n + 1) * 16 })),
    });
  const hintsFor = (ids: number[], maxHints = 4) =>
    index
      .lookup({
        ...scope,
        prefixHashes: ids.map((n) => hashOf(n)),
        candidateReplicaIds: [],
        maxHints,
      })
      .hints.map((h) => `${h.replicaId}:${h.matchedBlocks}`);
  return { clock, index, store, hintsFor };
}

describe("createCompactCacheIndex() internals", () => {
  describe("reads a replica's run from the block it was met at down to the head", () => {
    it.each([
      ["cold blocks", undefined],
      ["hot blocks", HOT_AT_3],
    ])("across writes: blocks below stored apart (%s)", (_, tuning) => {
      const { store, hintsFor } = setup(tuning);
      for (const other of ["x", "y", "z"]) store(other, [0, 1]);
      store("a", [0, 1]);
      store("a", [2, 3]);
      store("a", [4]);
      expect(hintsFor([0, 1, 2, 3, 4, 5])).toEqual(["a:5", "x:2", "y:2", "z:2"]);
    });

    it.each([
      ["cold blocks", undefined],
      ["hot blocks", HOT_AT_3],
    ])(
      "ends the run at the first block missing from the head, below the one met (%s)",
      (_, tuning) => {
        const { store, hintsFor } = setup(tuning);
        for (const other of ["x", "y", "z"]) store(other, [0]);
        // Blocks 2 and 5 exist (x holds them), so that the lookup reads the chain to its end.
        store("x", [2, 5]);
        store("a", [0, 1, 3, 4]);
        store("a", [6, 7]);
        expect(hintsFor([0, 1, 2, 3, 4, 5, 6, 7])).toEqual(["a:2", "x:1", "y:1", "z:1"]);
      },
    );

    it("gives no run to a replica whose head block expired, however fresh the blocks below", () => {
      const { clock, store, hintsFor } = setup();
      store("a", [0]);
      clock.advance(TTL / 2);
      store("a", [1, 2]);
      store("b", [0]);
      clock.advance(TTL / 2 + 1);
      expect(hintsFor([0, 1, 2])).toEqual(["b:1"]);
    });

    it("takes a run's freshness from its oldest block, wherever it sits", () => {
      const { clock, index, store } = setup();
      store("a", [0, 1, 2]);
      clock.advance(TTL / 4);
      store("a", [1, 2]);
      store("b", [0, 1, 2]);
      const hints = index.lookup({
        ...scope,
        prefixHashes: [0, 1, 2].map((n) => hashOf(n)),
        candidateReplicaIds: [],
        maxHints: 4,
      }).hints;
      expect(hints.map((h) => [h.replicaId, h.matchedBlocks])).toEqual([
        ["b", 3],
        ["a", 3],
      ]);
      // Its oldest block is its head, a quarter of the TTL old (freshness falls to 1/2 at the TTL).
      expect(hints[1]?.freshness).toBeCloseTo(0.875);
    });
  });

  it("does not take the first slot of another replica's chunk for a holder of the next block", () => {
    const { store, hintsFor } = setup();
    // 32 blocks stored deepest first: a's holder of block 0 is the last slot of its chunk.
    store("a", [0, ...Array.from({ length: 30 }, (_, i) => i + 1), 200]);
    // b's first chunk follows, and b's holder of block 100 is its first slot.
    store("b", [0, 100]);
    expect(hintsFor([0, 100, 200])).toEqual(["b:2", "a:1"]);
  });

  it("does not take a slot no holder has used for a holder of the first block", () => {
    // Holders sit in 32-slot chunks; a lookup tries the slots beside a replica's holder of one
    // block for its holder of the next. A slot never used must not pass for one of block 0.
    const { clock, index } = setup();
    const report = (replicaId: string, prefixes: [number, number][]) =>
      index.report({
        ...scope,
        replicaId,
        prefixes: prefixes.map(([n, tokenCount]) => ({ prefixHash: hashOf(n), tokenCount })),
      });
    // Stored deepest first: block 1 is created first (id 0), then block 0 (id 1).
    report("old", [
      [0, 1000],
      [1, 16],
    ]);
    clock.advance(10);
    // Its only holder is the first slot of a chunk of its own: the next slot was never used.
    report("new", [[0, 1000]]);
    const answer = index.lookup({
      ...scope,
      prefixHashes: [hashOf(0), hashOf(1)],
      candidateReplicaIds: [],
      maxHints: 1,
    });
    expect(answer.hints.map((h) => `${h.replicaId}:${h.matchedBlocks}`)).toEqual(["new:1"]);
  });

  it("answers a lookup allowed a hundred million hints without making room for them all", () => {
    const clock = new ManualClock();
    const index = createCompactCacheIndex({ clock, ttlMs: TTL, maxHintsLimit: 100_000_000 });
    for (const replicaId of ["a", "b"]) {
      index.report({ ...scope, replicaId, prefixes: [{ prefixHash: hashOf(0), tokenCount: 16 }] });
    }
    const query = { ...scope, prefixHashes: [hashOf(0)], candidateReplicaIds: [] };
    expect(index.lookup({ ...query, maxHints: 100_000_000 }).hints).toHaveLength(2);
  });

  it("overwrites one answer, its list and its hints, from one lookup with reuse to the next", () => {
    const { index, store } = setup();
    store("a", [0, 1, 2]);
    store("b", [0, 1]);
    const query = (ids: number[], maxHints = 4) => ({
      ...scope,
      prefixHashes: ids.map((n) => hashOf(n)),
      candidateReplicaIds: [],
      maxHints,
    });
    const first = index.lookup(query([0, 1, 2]), true);
    const [firstHint] = first.hints;
    expect(first.hints.map((h) => `${h.replicaId}:${h.matchedBlocks}`)).toEqual(["a:3", "b:2"]);
    const second = index.lookup(query([0, 1], 1), true);
    expect(second).toBe(first);
    expect(second.hints[0]).toBe(firstHint);
    expect(second).toEqual(index.lookup(query([0, 1], 1)));
    // The answers of lookups that do not reuse are new objects every time.
    expect(index.lookup(query([0]))).not.toBe(index.lookup(query([0])));
    expect(index.lookup(query([0]))).not.toBe(first);
  });

  it("keeps no replica reachable once the sweeper removed it, though a lookup ranked it", async () => {
    const { clock, index } = setup();
    // Reported stats are copied into the replica's record, and a hint hands out that copy.
    const statsOfReplica = (() => {
      index.report({
        ...scope,
        replicaId: "gone",
        prefixes: [{ prefixHash: hashOf(0), tokenCount: 16 }],
        stats: { activeRequests: 1, queuedRequests: 0, kvCacheUsage: 0.5 },
      });
      const query = { ...scope, prefixHashes: [hashOf(0)], candidateReplicaIds: [], maxHints: 1 };
      return new WeakRef(index.lookup(query).hints[0]?.stats as object);
    })();
    clock.advance(TTL + 1);
    while (!index.sweep(100).done) {}
    expect(index.size().replicas).toBe(0);
    expect(await isCollected(statsOfReplica)).toBe(true);
  });

  it("returns the freshest holders of a block held by hundreds of replicas, best first", () => {
    const { clock, store, hintsFor } = setup();
    for (let r = 0; r < 300; r++) {
      store(`r${r}`, [0]);
      clock.advance(1);
    }
    expect(hintsFor([0, 1])).toEqual(["r299:1", "r298:1", "r297:1", "r296:1"]);
  });

  it("ranks the one replica holding the deep blocks first, then the freshest holders of the head", () => {
    const { clock, store, hintsFor } = setup();
    store("deep", [0, 1, 2, 3]);
    for (let r = 0; r < 100; r++) {
      clock.advance(1);
      store(`r${r}`, [0]);
    }
    expect(hintsFor([0, 1, 2, 3, 4], 3)).toEqual(["deep:4", "r99:1", "r98:1"]);
  });

  it("finds a re-confirmed holder even when holders confirmed after it have expired", () => {
    const { clock, store, hintsFor, index } = setup();
    store("early", [0]);
    clock.advance(10);
    store("late", [0]);
    clock.advance(TTL - 5);
    store("early", [0]);
    clock.advance(10);
    // "late" expired (age TTL + 5); "early" was confirmed again 10 ms ago.
    expect(hintsFor([0])).toEqual(["early:1"]);
    expect(index.sweep(10).expiredEntries).toBe(1);
  });

  it("does not count a replica's run through a block it no longer holds", () => {
    const { store, hintsFor, index } = setup(HOT_AT_3);
    for (const r of ["a", "b", "c", "d"]) store(r, [0, 1, 2]);
    index.publish({
      ...scope,
      replicaId: "b",
      events: [{ type: "prefix-evicted", prefixes: [{ prefixHash: hashOf(0), tokenCount: 0 }] }],
    });
    expect(hintsFor([0, 1, 2], 8).sort()).toEqual(["a:3", "c:3", "d:3"]);
  });

  it("keeps no state for the schemes a live replica no longer holds anything under", () => {
    const { index, hintsFor } = setup();
    const arrayBytes = () => index.arrayBytes;
    const cycle = (scheme: number) => {
      index.report({
        ...scope,
        hashScheme: `scheme-${scheme}`,
        replicaId: "r",
        prefixes: [{ prefixHash: hashOf(scheme), tokenCount: 16 }],
      });
      index.publish({
        ...scope,
        replicaId: "r",
        hashScheme: "",
        events: [{ type: "all-cleared" }],
      });
    };
    for (let scheme = 0; scheme < 10; scheme++) cycle(scheme);
    const settled = arrayBytes();
    for (let scheme = 10; scheme < 5_000; scheme++) cycle(scheme);
    // Each cycle's group and scheme ids are reused rather than new ones made.
    expect(arrayBytes()).toBe(settled);
    expect(index.describe({ tenant: scope.tenant, model: scope.model }).hashSchemes).toEqual([]);
    // The replica itself is still known, and a scheme used again works as before.
    cycle(3);
    index.report({
      ...scope,
      replicaId: "r",
      prefixes: [{ prefixHash: hashOf(1), tokenCount: 16 }],
    });
    expect(hintsFor([1])).toEqual(["r:1"]);
  });

  it("scans a replica's holdings for a tier clear at most once per batch, then only what the batch wrote", () => {
    const { index } = setup(undefined, { maxEntries: 100_000 });
    const held = Array.from({ length: 10_000 }, (_, n) => n);
    index.publish({
      ...scope,
      replicaId: "r",
      events: [{ type: "prefix-added", prefixes: entriesOf(held), tier: "cpu" }],
    });
    const visitsBefore = index.tierClearVisits;
    const clearDisk = { type: "all-cleared", tier: "disk" } as const;
    // A thousand clears of a tier nothing is on, then clears each after a one-block addition.
    const events = [
      ...Array.from({ length: 1_000 }, () => clearDisk),
      ...Array.from({ length: 1_000 }, (_, n) => [
        { type: "prefix-added", prefixes: entriesOf([n]), tier: "disk" } as const,
        clearDisk,
      ]).flat(),
    ];
    const outcome = index.publish({ ...scope, replicaId: "r", events });
    expect(outcome.evicted.cleared).toBe(0);
    expect(index.size().entries).toBe(10_000);
    // No scan of the 10,000 (none was ever on disk), then each addition's one holder; not 2,000
    // scans.
    expect(index.tierClearVisits - visitsBefore).toBe(1_000);
    // Once a holder has been on disk, a clear in a new batch scans the holdings once.
    index.publish({ ...scope, replicaId: "r", events: [clearDisk] });
    expect(index.tierClearVisits - visitsBefore).toBe(1_000 + 10_000);
    const answer = index.lookup({
      ...scope,
      prefixHashes: [hashOf(0)],
      candidateReplicaIds: [],
      maxHints: 1,
    });
    expect(answer.hints[0]?.tier).toBe("cpu");
  });

  it("keeps the tie order when a load swings across thousands of replicas, and back", () => {
    const clock = new ManualClock();
    const index = createCompactCacheIndex({ clock, ttlMs: TTL });
    const write = { tenant: "t", model: "m", hashScheme: "s" };
    const load = (activeRequests: number) => ({
      activeRequests,
      queuedRequests: 0,
      kvCacheUsage: 0,
    });
    for (let r = 0; r < 6_000; r++) {
      const prefixes = [{ prefixHash: hashOf(r), tokenCount: 16 }];
      index.report({ ...write, replicaId: `r${r}`, prefixes, stats: load(r % 3) });
    }
    // r0 ranks first. It moves 5,999 places right and back (past SPLICE_DISTANCE: by splice), then
    // about 2,000 (by the loop), then none.
    for (const activeRequests of [9, 0, 1, 1]) {
      index.report({ ...write, replicaId: "r0", prefixes: [], stats: load(activeRequests) });
      expect(index.consistencyProblems()).toEqual([]);
    }
  });

  it("counts a block's holders again when the cap evicts some of them during the write", () => {
    const { clock, store, hintsFor, index } = setup(HOT_AT_3, { maxEntries: 3 });
    for (const [replica, block] of [
      ["a", 0],
      ["b", 0],
      ["x", 9],
    ] as const) {
      store(replica, [block]);
      clock.advance(1);
    }
    // At the cap: c's write evicts a's holder of block 0, so block 0 ends with 2 holders (b, c),
    // below the 3 that make it hot; counting a as well would make it hot with a count of 3.
    store("c", [0]);
    expect(index.consistencyProblems()).toEqual([]);
    expect(hintsFor([0])).toEqual(["c:1", "b:1"]);
    // Block 0 goes with its last holders, and no count is left behind for it.
    for (const r of ["b", "c"]) {
      index.publish({ ...scope, replicaId: r, events: [{ type: "all-cleared" }] });
    }
    expect(index.consistencyProblems()).toEqual([]);
  });

  it("keeps hot-block membership right across promotion, demotion and promotion again", () => {
    const { clock, store, hintsFor, index } = setup(HOT_AT_3);
    for (const r of ["a", "b", "c", "d"]) store(r, [0, 1]);
    for (const r of ["a", "b", "c"]) {
      index.publish({ ...scope, replicaId: r, events: [{ type: "all-cleared" }] });
    }
    clock.advance(1);
    for (const r of ["e", "f", "g"]) store(r, [0]);
    clock.advance(1);
    store("a", [0, 1]);
    // e, f and g tie on score and load, so they rank by id.
    expect(hintsFor([0, 1], 8)).toEqual(["a:2", "d:2", "e:1", "f:1", "g:1"]);
  });

  it("breaks ties by id right after numbering the replicas afresh", () => {
    // Each id sorts between the last one and "c", so each order is halfway between the last's and
    // "c"'s, until no number is left between them and the scope's replicas are numbered again.
    const { clock, store, index } = setup();
    const ids = ["b", "c", ...Array.from({ length: 80 }, (_, i) => `b${"1".repeat(i + 1)}`)];
    for (const id of ids) store(id, [0]);
    expect(index.consistencyProblems()).toEqual([]);
    // Confirmed again in one millisecond, in reverse, so that the list's order is not the ids'.
    clock.advance(1);
    const reference = createMapCacheIndex({ clock, ttlMs: TTL });
    for (const id of [...ids].reverse()) {
      reference.report({ ...scope, replicaId: id, prefixes: entriesOf([0]) });
      index.report({ ...scope, replicaId: id, prefixes: entriesOf([0]) });
    }
    const query = { ...scope, prefixHashes: [hashOf(0)], candidateReplicaIds: [], maxHints: 64 };
    const answer = index.lookup(query);
    expect(answer).toEqual(reference.lookup(query));
    expect(answer.hints.slice(0, 2).map((h) => h.replicaId)).toEqual(["b", "b1"]);
  });

  describe("a tie among thousands of holders of one block", () => {
    const REPLICAS = 3_000;
    /** Loads that leave the least loaded replicas scattered through the ids and the list. */
    const loadOf = (i: number) => (i * 7_919) % 50;
    const idOf = (i: number) => `r${String(i).padStart(4, "0")}`;

    /** Every replica holds block 0 (and a block of its own), all confirmed in one millisecond. */
    function tiedFleet(options: { loads: boolean; aliveOnly?: boolean }) {
      const clock = new ManualClock();
      const compact = createCompactCacheIndex({ clock, ttlMs: TTL });
      const reference = createMapCacheIndex({ clock, ttlMs: TTL });
      for (const index of [compact, reference]) {
        for (let i = 0; i < REPLICAS; i++) {
          index.report({
            ...scope,
            replicaId: idOf(i),
            prefixes: entriesOf([0, 1_000 + i]),
            ...(options.loads
              ? { stats: { activeRequests: loadOf(i), queuedRequests: i % 2, kvCacheUsage: 0 } }
              : {}),
          });
          // Past the TTL, only the replicas kept alive still count: every third one.
          if (options.aliveOnly && i % 3 === 0) {
            index.keepAlive({ ...scope, replicaId: idOf(i) }, clock.now() + 10 * TTL);
          }
        }
      }
      if (options.aliveOnly) clock.advance(2 * TTL);
      const lookup = (candidates: string[] = [], maxHints = 4) => {
        const query = {
          ...scope,
          prefixHashes: [hashOf(0), hashOf(999)],
          candidateReplicaIds: candidates,
          maxHints,
        };
        return { compact: compact.lookup(query), reference: reference.lookup(query) };
      };
      return { compact, reference, lookup };
    }

    it.each([
      ["by load, then id", { loads: true }],
      ["by id alone (no stats)", { loads: false }],
      ["among replicas kept alive past the TTL", { loads: true, aliveOnly: true }],
    ])("returns the tie's winners %s, read in tie order rather than the whole list", (_, how) => {
      const { compact, lookup } = tiedFleet(how);
      for (const maxHints of [1, 4, 16]) {
        const before = compact.tiesSettledInOrder;
        const answer = lookup([], maxHints);
        expect(answer.compact).toEqual(answer.reference);
        expect(answer.compact.hints).toHaveLength(maxHints);
        expect(compact.tiesSettledInOrder - before).toBe(1);
      }
      expect(compact.consistencyProblems()).toEqual([]);
    });

    it("keeps to the candidates a lookup names", () => {
      const { lookup } = tiedFleet({ loads: true });
      const candidates = [idOf(2_999), idOf(1_500), idOf(7), idOf(2_000), idOf(123), idOf(42)];
      const answer = lookup(candidates);
      expect(answer.compact).toEqual(answer.reference);
      expect(answer.compact.hints).toHaveLength(4);
      for (const hint of answer.compact.hints) expect(candidates).toContain(hint.replicaId);
    });

    it("follows the replicas' loads as their stats change", () => {
      const { compact, reference, lookup } = tiedFleet({ loads: true });
      const first = lookup().compact.hints.map((h) => h.replicaId);
      // The winners get busy, and one of the busiest replicas goes idle.
      const busiest = idOf(
        Array.from({ length: REPLICAS }, (_, i) => i).findLast((i) => loadOf(i) === 49) ?? 0,
      );
      const updates = [...first.map((id) => [id, 1_000] as const), [busiest, 0] as const];
      for (const index of [compact, reference]) {
        for (const [replicaId, active] of updates) {
          const stats = { activeRequests: active, queuedRequests: 0, kvCacheUsage: 0 };
          index.publish({ ...scope, replicaId, events: [{ type: "replica-updated", stats }] });
        }
      }
      expect(compact.consistencyProblems()).toEqual([]);
      // 60 replicas had load 0: the 56 not made busy and the one made idle now lead.
      const answer = lookup([], 64);
      expect(answer.compact).toEqual(answer.reference);
      const after = answer.compact.hints.map((h) => h.replicaId);
      expect(after.slice(0, 57)).toContain(busiest);
      for (const id of first) expect(after).not.toContain(id);
    });
  });
});
