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
      }),
      { numRuns: 60 },
    );
  });

  it("reuses the ids of deleted blocks before making new ones", () => {
    const store = new BlockStore();
    const ids = Array.from({ length: 10 }, (_, i) => store.create(0, 0, i, 1));
    for (const id of ids) store.delete(id);
    const again = Array.from({ length: 10 }, (_, i) => store.create(0, 0, 100 + i, 1));
    expect(new Set(again)).toEqual(new Set(ids));
  });
});
