import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BlockStore, NIL } from "../../src/core/block-store.js";
import { mix32 } from "../../src/core/prefix-fingerprint.js";

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

describe("BlockStore with keys chosen to share a slot", () => {
  const SEED = 0x5eed;

  it("keeps every block findable when a run from one slot outgrows the probe distance", () => {
    const store = new BlockStore(SEED);
    // At the first table size (1024 slots) Z and C start at slot 0 and the 64 keys A at slot 1,
    // so C's insert pushes the A run past the longest distance a slot records; at 2048 slots the
    // A keys split over slots 2 and 3.
    const z = keyWithHash(SEED, 0, 0x0000_0001, 1);
    const a = Array.from({ length: 64 }, (_, i) =>
      keyWithHash(SEED, 0, (1 << 22) | ((i & 1) << 21) | i, 100 + i),
    );
    const c = keyWithHash(SEED, 0, 0x0000_0002, 2);
    const all = [z, ...a, c];
    const ids = createAll(store, all);
    expect(findAll(store, all)).toEqual(ids);
    expect(store.size).toBe(66);
  });

  it("keeps every block findable, and the table small, when more than 63 keys share one hash", () => {
    const store = new BlockStore(SEED);
    const keys = Array.from({ length: 200 }, (_, i) => keyWithHash(SEED, 0, 0x1234_5678, 1 + i));
    const ids = createAll(store, keys);
    expect(findAll(store, keys)).toEqual(ids);
    expect(store.size).toBe(200);
    // The table did not grow to chase keys that share a slot at every size: it is about the size
    // it has for as many keys that do not collide.
    const spread = new BlockStore(SEED);
    for (let i = 0; i < 200; i++) spread.create(0, 0, i, 1);
    expect(store.byteLength).toBeLessThanOrEqual(spread.byteLength + 16 * 1024);
    // Deleting works wherever a block ended up, and a deleted key is gone.
    for (const i of [0, 100, 199]) store.delete(ids[i] as number);
    expect(store.size).toBe(197);
    for (const i of [0, 100, 199]) {
      const [high, low] = keys[i] as [number, number];
      expect(store.find(0, high, low)).toBe(NIL);
    }
    expect(store.find(0, ...(keys[150] as [number, number]))).toBe(ids[150]);
  });

  it("loses no block when the entry left over is one the new block displaced", () => {
    const store = new BlockStore(SEED);
    // Z and C sit one slot before a run of 64 A keys at every table size: placing C pushes an A
    // key, not C, out of the run.
    const z = keyWithHash(SEED, 0, 0x7fff_ffff, 1);
    const a = Array.from({ length: 64 }, (_, i) => keyWithHash(SEED, 0, 0x8000_0000, 100 + i));
    const c = keyWithHash(SEED, 0, 0x7fff_ffff, 2);
    const all = [z, ...a, c];
    const ids = createAll(store, all);
    expect(findAll(store, all)).toEqual(ids);
    expect(store.size).toBe(66);
  });

  it("spreads the same keys over the table under another seed", () => {
    const store = new BlockStore(SEED + 1);
    const keys = Array.from({ length: 200 }, (_, i) => keyWithHash(SEED, 0, 0x1234_5678, 1 + i));
    const ids = createAll(store, keys);
    expect(findAll(store, keys)).toEqual(ids);
  });
});

/** Creates a block for each key, in scope 0; returns their ids in order. */
function createAll(store: BlockStore, keys: readonly (readonly [number, number])[]): number[] {
  return keys.map(([high, low]) => store.create(0, high, low, 1));
}

/** What a find in scope 0 returns for each key, in order. */
function findAll(store: BlockStore, keys: readonly (readonly [number, number])[]): number[] {
  return keys.map(([high, low]) => store.find(0, high, low));
}

/**
 * A key (high, low) in `scope` whose table hash under `seed` is `hash`: what a client who knew the
 * seed could send. Mirrors BlockStore's key hash, inverting its last mix.
 */
function keyWithHash(seed: number, scope: number, hash: number, high: number): [number, number] {
  const scopeMix = mix32(((scope + 0x9e3779b9) ^ seed) >>> 0);
  const low = (unmix32(hash >>> 0) ^ mix32((high ^ scopeMix) >>> 0)) >>> 0;
  return [high, low];
}

/** The inverse of `mix32`. */
function unmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7ed1b41d) >>> 0; // the inverse of 0xc2b2ae35 modulo 2^32
  h = (h ^ (h >>> 13) ^ (h >>> 26)) >>> 0;
  h = Math.imul(h, 0xa5cb9243) >>> 0; // the inverse of 0x85ebca6b
  h ^= h >>> 16;
  return h >>> 0;
}
