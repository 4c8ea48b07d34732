import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BlockStore, NIL } from "../../src/core/block-store.js";

type Key = readonly [scope: number, high: number, low: number];

describe("BlockStore", () => {
  it("finds exactly the blocks created and not deleted, through growth, shrinking and churn", () => {
    // Few distinct scopes and highs, so keys collide on all but one part and probe runs are long.
    const key = fc.tuple(
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 4000 }),
    );
    const operation = fc.oneof(
      { weight: 3, arbitrary: fc.record({ op: fc.constant("create" as const), key }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key }) },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant("burst" as const),
          from: fc.integer({ min: 0, max: 4000 }),
          count: fc.integer({ min: 100, max: 3000 }),
          create: fc.boolean(),
        }),
      },
    );
    fc.assert(
      fc.property(fc.array(operation, { minLength: 10, maxLength: 200 }), (operations) => {
        const store = new BlockStore();
        const model = new Map<string, number>();
        const create = (k: Key) => {
          const name = k.join("/");
          if (model.has(name)) return;
          expect(store.find(...k)).toBe(NIL);
          model.set(name, store.create(...k, 7));
        };
        const remove = (k: Key) => {
          const id = model.get(k.join("/"));
          if (id === undefined) return;
          store.delete(id);
          model.delete(k.join("/"));
        };
        for (const o of operations) {
          if (o.op === "create") create(o.key);
          else if (o.op === "delete") remove(o.key);
          else {
            for (let i = 0; i < o.count; i++) {
              const k: Key = [i % 3, 0, o.from + i];
              if (o.create) create(k);
              else remove(k);
            }
            // Often in the middle of a resize, with keys in both tables.
            const chain = Array.from({ length: 30 }, (_, i): Key => [i % 3, 0, o.from + i]);
            expectChainAsFound(store, chain);
          }
        }
        expect(store.size).toBe(model.size);
        for (const [name, id] of model) {
          const [scope, high, low] = name.split("/").map(Number) as [number, number, number];
          expect(store.find(scope, high, low)).toBe(id);
        }
        for (let low = 0; low < 7100; low += 97) {
          if (!model.has(`1/1/${low}`)) expect(store.find(1, 1, low)).toBe(NIL);
        }
        // Chains of stored keys, cut by one that is not stored at varying depths.
        const stored = [...model.keys()].map(
          (name) => name.split("/").map(Number) as unknown as Key,
        );
        for (let start = 0; start < stored.length; start += 37) {
          const chain = stored.slice(start, start + 40);
          const cut = start % 45;
          if (cut < chain.length) chain.splice(cut, 0, [1, 1, 9999]);
          expectChainAsFound(store, chain);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("finds a chain as one find per key would, up to the first key not stored", () => {
    const store = new BlockStore();
    const ids = Array.from({ length: 5000 }, (_, i) => store.create(i % 2, 3, i, 1));
    const out = new Uint32Array(8);
    const keys = (lows: number[]) => new Uint32Array(lows.flatMap((low) => [3, low]));
    expect(store.findChain(0, keys([0, 2, 4, 6]), 0, 4, out)).toBe(4);
    expect([...out.subarray(0, 4)]).toEqual([ids[0], ids[2], ids[4], ids[6]]);
    // Key 1 is in scope 1, not 0: the chain stops there.
    expect(store.findChain(0, keys([8, 1, 10]), 0, 3, out)).toBe(1);
    expect(out[0]).toBe(ids[8]);
    expect(store.findChain(1, keys([]), 0, 0, out)).toBe(0);
    // A later window: keys 2 and 3 of the chain, stopping at key 3.
    out.fill(0);
    expect(store.findChain(0, keys([0, 2, 4, 1, 6]), 2, 5, out)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([0, 0, ids[4]]);
  });

  it("finds a chain stored beside itself without taking a neighbour's key for the one asked", () => {
    const store = new BlockStore();
    const keys = (lows: number[]) => new Uint32Array(lows.flatMap((low) => [0, low]));
    const out = new Uint32Array(8);
    // Created deepest first, as a write creates a chain: ids descend along the chain.
    const [c, b, a] = [12, 11, 10].map((low) => store.create(0, 0, low, 1)) as [
      number,
      number,
      number,
    ];
    expect(store.findChain(0, keys([10, 11, 12]), 0, 3, out)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([a, b, c]);
    // Ascending ids are found beside their predecessor too.
    expect(store.findChain(0, keys([12, 11, 10]), 0, 3, out)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([c, b, a]);
    // A neighbour with the same hash in another scope is not the block asked for.
    const otherScope = store.create(1, 0, 13, 1);
    expect(store.findChain(0, keys([12, 13]), 0, 2, out)).toBe(1);
    expect(store.findChain(1, keys([13]), 0, 1, out)).toBe(1);
    expect(out[0]).toBe(otherScope);
    // A deleted neighbour is not found, and its id, reused by another key, holds that key only.
    store.delete(b);
    expect(store.findChain(0, keys([10, 11, 12]), 0, 3, out)).toBe(1);
    const reused = store.create(0, 0, 99, 1);
    expect(reused).toBe(b);
    expect(store.findChain(0, keys([10, 11]), 0, 2, out)).toBe(1);
    expect(store.findChain(0, keys([10, 99, 12]), 0, 3, out)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([a, reused, c]);
  });

  it("reuses the ids of deleted blocks before making new ones", () => {
    const store = new BlockStore();
    const ids = Array.from({ length: 10 }, (_, i) => store.create(0, 0, i, 1));
    for (const id of ids) store.delete(id);
    const again = Array.from({ length: 10 }, (_, i) => store.create(0, 0, 100 + i, 1));
    expect(new Set(again)).toEqual(new Set(ids));
  });
});

/** findChain over `chain` returns what a find per key returns, up to the first NIL. */
function expectChainAsFound(store: BlockStore, chain: readonly Key[]): void {
  // findChain takes one scope; keys of others are looked up in it too, and mostly miss.
  const scope = chain[0]?.[0] ?? 0;
  const keys = new Uint32Array(chain.flatMap(([, high, low]) => [high, low]));
  const expected: number[] = [];
  for (const [, high, low] of chain) {
    const id = store.find(scope, high, low);
    if (id === NIL) break;
    expected.push(id);
  }
  const out = new Uint32Array(chain.length);
  // In windows of 1, 2, 3... keys, as a lookup goes in growing windows.
  let found = 0;
  for (let size = 1; found < chain.length; size++) {
    const end = Math.min(chain.length, found + size);
    found = store.findChain(scope, keys, found, end, out);
    if (found < end) break;
  }
  expect([...out.subarray(0, found)]).toEqual(expected);
}
