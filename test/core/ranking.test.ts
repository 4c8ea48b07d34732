import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareHints, freshnessAt, insertTopK, type Ranked } from "../../src/core/ranking.js";

const ranked = fc.record({
  replicaId: fc.string({ maxLength: 3 }),
  score: fc.constantFrom(0, 16, 32, 48.5),
  stats: fc.option(
    fc.record({
      activeRequests: fc.nat(3),
      queuedRequests: fc.nat(3),
      kvCacheUsage: fc.constant(0),
    }),
    { nil: undefined },
  ),
});

describe("insertTopK()", () => {
  it("selects the same hints, in the same order, as sorting everything and taking the first k", () => {
    fc.assert(
      fc.property(fc.array(ranked, { maxLength: 40 }), fc.integer({ min: 1, max: 8 }), (all, k) => {
        const best: Ranked[] = [];
        for (const candidate of all) insertTopK(best, candidate, k);
        const expected = [...all].sort(compareHints).slice(0, k);
        expect(best.map((r) => [r.score, r.replicaId])).toEqual(
          expected.map((r) => [r.score, r.replicaId]),
        );
      }),
    );
  });
});

describe("freshnessAt()", () => {
  it.each([
    [0, 1],
    [60_000, 0.75],
    [120_000, 0.5],
    [-5, 1],
    [500_000, 0.5],
  ])("is %d ms old -> %d", (age, expected) => {
    expect(freshnessAt(age, 120_000)).toBe(expected);
  });
});
