import { PagedU32 } from "./paged-u32.js";
import { mix32 } from "./prefix-fingerprint.js";

/** "No block" / "no holder": the id no record ever gets. */
export const NIL = 0xffffffff;

/** Table slot states besides "holds block id + 1". */
const EMPTY = 0;
const TOMBSTONE = 0xffffffff;
const MIN_TABLE = 1 << 10;
/** Old-table slots moved per write while a resize is in progress. */
const MIGRATE_STEP = 32;

/**
 * The blocks of every scope, keyed by (scheme scope id, 64-bit fingerprint), in flat arrays: 20 bytes
 * per block plus its slot in an open-addressing table of block ids (4 bytes per slot, at most 3/4
 * full). A block exists while at least one replica holds it.
 *
 * Resizing the table is incremental: a new table takes every insert while the old one is drained
 * `MIGRATE_STEP` slots per write, and finds look in both. No single write rehashes millions of keys.
 * Freed block ids are reused before new ones, so memory is reused as blocks come and go.
 */
export class BlockStore {
  readonly #high = new PagedU32();
  readonly #low = new PagedU32();
  readonly #scope = new PagedU32();
  /** The first holder of the block's recency-ordered holder list; free ids chain through it. */
  readonly head = new PagedU32();
  /** Token count of the block, with {@link HOT_BIT} set while it is hot. */
  readonly tokens = new PagedU32();
  #nextFresh = 0;
  #freeList = NIL;
  #live = 0;

  #table = new Uint32Array(MIN_TABLE);
  /** Occupied slots of `#table`, tombstones included. */
  #used = 0;
  /** The table being drained during a resize, and the next slot of it to move. */
  #old: Uint32Array | undefined;
  #migrateAt = 0;

  /** Blocks stored. */
  get size(): number {
    return this.#live;
  }

  /** Bytes of the block records and tables. */
  get byteLength(): number {
    const records =
      this.#high.byteLength +
      this.#low.byteLength +
      this.#scope.byteLength +
      this.head.byteLength +
      this.tokens.byteLength;
    return records + this.#table.byteLength + (this.#old?.byteLength ?? 0);
  }

  /** The block for (scope, fingerprint), or {@link NIL}. Cost: O(1) expected. */
  find(scope: number, high: number, low: number): number {
    const hash = keyHash(scope, high, low);
    const found = this.#probe(this.#table, hash, scope, high, low);
    if (found !== NIL || this.#old === undefined) return found;
    return this.#probe(this.#old, hash, scope, high, low);
  }

  /** Creates the block, which must not exist yet, with no holders. */
  create(scope: number, high: number, low: number, tokens: number): number {
    let id = this.#freeList;
    if (id === NIL) {
      id = this.#nextFresh++;
      this.#high.ensure(id);
      this.#low.ensure(id);
      this.#scope.ensure(id);
      this.head.ensure(id);
      this.tokens.ensure(id);
    } else {
      this.#freeList = this.head.get(id);
    }
    this.#high.set(id, high);
    this.#low.set(id, low);
    this.#scope.set(id, scope);
    this.head.set(id, NIL);
    this.tokens.set(id, tokens);
    this.#live++;
    if ((this.#used + 1) * 4 > this.#table.length * 3) {
      // A resize in progress always finishes long before this (see #resize); finishing it here
      // keeps a full table impossible whatever the mix of writes.
      this.#migrate(Number.POSITIVE_INFINITY);
      this.#resize();
    }
    if (this.#place(this.#table, keyHash(scope, high, low), id)) this.#used++;
    this.#migrate(MIGRATE_STEP);
    return id;
  }

  /** Deletes a block that has no holders left; its id is reused. */
  delete(id: number): void {
    const scope = this.#scope.get(id);
    const high = this.#high.get(id);
    const low = this.#low.get(id);
    const hash = keyHash(scope, high, low);
    if (!this.#erase(this.#table, hash, id) && this.#old !== undefined) {
      this.#erase(this.#old, hash, id);
    }
    this.head.set(id, this.#freeList);
    this.#freeList = id;
    this.#live--;
    if (
      this.#old === undefined &&
      this.#table.length > MIN_TABLE &&
      this.#live * 8 < this.#table.length
    ) {
      this.#resize();
    }
    this.#migrate(MIGRATE_STEP);
  }

  /** Moves up to `slots` slots of an in-progress resize; for idle time (sweeps). */
  migrate(slots: number): void {
    this.#migrate(slots);
  }

  #probe(table: Uint32Array, hash: number, scope: number, high: number, low: number): number {
    const mask = table.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = table[slot] as number;
      if (entry === EMPTY) return NIL;
      if (entry === TOMBSTONE) continue;
      const id = entry - 1;
      if (
        this.#low.get(id) === low &&
        this.#high.get(id) === high &&
        this.#scope.get(id) === scope
      ) {
        return id;
      }
    }
  }

  /** Puts `id` in the first free slot; returns whether that slot was empty (not a tombstone). */
  #place(table: Uint32Array, hash: number, id: number): boolean {
    const mask = table.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = table[slot] as number;
      if (entry === EMPTY || entry === TOMBSTONE) {
        table[slot] = id + 1;
        return entry === EMPTY;
      }
    }
  }

  #erase(table: Uint32Array, hash: number, id: number): boolean {
    const mask = table.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = table[slot] as number;
      if (entry === EMPTY) return false;
      if (entry === id + 1) {
        table[slot] = TOMBSTONE;
        return true;
      }
    }
  }

  /**
   * Starts draining the table into one sized for the live blocks at half load. The drain moves
   * MIGRATE_STEP old slots per write, so it ends within (old slots / MIGRATE_STEP) writes; the new
   * table cannot reach 3/4 load in that many writes, because it starts at most 1/2 full.
   */
  #resize(): void {
    let capacity = MIN_TABLE;
    while (capacity < this.#live * 2) capacity *= 2;
    this.#old = this.#table;
    this.#migrateAt = 0;
    this.#table = new Uint32Array(capacity);
    this.#used = 0;
  }

  #migrate(slots: number): void {
    const old = this.#old;
    if (old === undefined) return;
    const end = Math.min(old.length, this.#migrateAt + slots);
    for (let slot = this.#migrateAt; slot < end; slot++) {
      const entry = old[slot] as number;
      if (entry === EMPTY || entry === TOMBSTONE) continue;
      const id = entry - 1;
      const hash = keyHash(this.#scope.get(id), this.#high.get(id), this.#low.get(id));
      if (this.#place(this.#table, hash, id)) this.#used++;
    }
    this.#migrateAt = end;
    if (end === old.length) this.#old = undefined;
  }
}

/** The high bit of a block's `tokens`: the block has many holders and is indexed per replica. */
export const HOT_BIT = 0x80000000;

function keyHash(scope: number, high: number, low: number): number {
  return mix32(low ^ mix32(high ^ mix32(scope + 0x9e3779b9)));
}
