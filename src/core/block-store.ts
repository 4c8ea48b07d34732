import { PagedRecords } from "./paged-records.js";
import { mix32 } from "./prefix-fingerprint.js";

/** "No block" / "no holder": the id no record ever gets. */
export const NIL = 0xffffffff;

/** Fields of a block record; free ids chain through HEAD. */
const HIGH = 0;
const LOW = 1;
const SCOPE = 2;
const HEAD = 3;
const TOKENS = 4;
/** Table slot states besides "holds block id + 1". */
const EMPTY = 0;
const TOMBSTONE = 0xffffffff;
const MIN_TABLE = 1024;
/** Old-table slots moved per write while a resize is in progress. */
const MIGRATE_STEP = 32;

/**
 * The blocks of every scope, keyed by (scheme scope id, 64-bit fingerprint), in flat arrays: 20 bytes
 * per block plus its slot in a linear-probing table of block ids (4 bytes per slot, 1/5 to 4/5
 * full). A block exists while at least one replica holds it.
 *
 * Resizing the table is incremental: a new table takes every insert while the old one is drained
 * `MIGRATE_STEP` slots per write, and finds look in both. No single write rehashes millions of keys.
 * Freed block ids are reused before new ones, so memory is reused as blocks come and go.
 */
export class BlockStore {
  /** One record per block: HIGH, LOW, SCOPE, HEAD, TOKENS. */
  readonly #records = new PagedRecords(5);
  #nextFresh = 0;
  #freeList = NIL;
  #live = 0;

  #table = new Uint32Array(MIN_TABLE);
  /** Occupied slots of `#table`, tombstones included. */
  #used = 0;
  /** The table being drained during a resize, and the next slot of it to move. */
  #old: Uint32Array | undefined;
  #migrateAt = 0;

  /** The first holder of the block's recency-ordered holder list, or NIL. */
  headOf(block: number): number {
    return this.#records.get(block, HEAD);
  }

  setHead(block: number, holder: number): void {
    this.#records.set(block, HEAD, holder);
  }

  /** The block's token count, with {@link HOT_BIT} set while it is hot. */
  tokensOf(block: number): number {
    return this.#records.get(block, TOKENS);
  }

  setTokens(block: number, tokens: number): void {
    this.#records.set(block, TOKENS, tokens);
  }

  /** Blocks stored. */
  get size(): number {
    return this.#live;
  }

  /** Bytes of the block records and tables. */
  get byteLength(): number {
    return this.#records.byteLength + this.#table.byteLength + (this.#old?.byteLength ?? 0);
  }

  /** The block for (scope, fingerprint), or {@link NIL}. Cost: O(1) expected. */
  find(scope: number, high: number, low: number): number {
    const hash = keyHash(scope, high, low);
    const found = this.#probe(this.#table, hash, scope, high, low);
    if (found !== NIL || this.#old === undefined) return found;
    return this.#probe(this.#old, hash, scope, high, low);
  }

  /** Creates the block, which must not exist yet, with no holders. Throws past {@link MAX_BLOCKS}. */
  create(scope: number, high: number, low: number, tokens: number): number {
    let id = this.#freeList;
    if (id === NIL) {
      if (this.#nextFresh >= MAX_BLOCKS) throw new RangeError(`more than ${MAX_BLOCKS} blocks`);
      id = this.#nextFresh++;
      this.#records.ensure(id);
    } else {
      this.#freeList = this.#records.get(id, HEAD);
    }
    this.#records.set(id, HIGH, high);
    this.#records.set(id, LOW, low);
    this.#records.set(id, SCOPE, scope);
    this.#records.set(id, HEAD, NIL);
    this.#records.set(id, TOKENS, tokens);
    this.#live++;
    if ((this.#used + 1) * 5 > this.#table.length * 4) {
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
    const hash = keyHash(
      this.#records.get(id, SCOPE),
      this.#records.get(id, HIGH),
      this.#records.get(id, LOW),
    );
    if (this.#eraseShifting(hash, id)) this.#used--;
    else if (this.#old !== undefined) this.#erase(this.#old, hash, id);
    this.#records.set(id, HEAD, this.#freeList);
    this.#freeList = id;
    this.#live--;
    if (
      this.#old === undefined &&
      this.#table.length > MIN_TABLE &&
      this.#live * 5 < this.#table.length
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
    const capacity = table.length;
    const tag = hash & TAG_MASK;
    for (let slot = homeSlot(hash, capacity); ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      const entry = table[slot] as number;
      if (entry === EMPTY) return NIL;
      // The tag settles most mismatches without reading the block's key from memory.
      if (entry >>> ID_BITS !== tag || entry === TOMBSTONE) continue;
      const id = (entry & ID_MASK) - 1;
      if (
        this.#records.get(id, LOW) === low &&
        this.#records.get(id, HIGH) === high &&
        this.#records.get(id, SCOPE) === scope
      ) {
        return id;
      }
    }
  }

  /** Puts `id` in the first free slot; returns whether that slot was empty (not a tombstone). */
  #place(table: Uint32Array, hash: number, id: number): boolean {
    const capacity = table.length;
    for (let slot = homeSlot(hash, capacity); ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      const entry = table[slot] as number;
      if (entry === EMPTY || entry === TOMBSTONE) {
        table[slot] = (((hash & TAG_MASK) << ID_BITS) | (id + 1)) >>> 0;
        return entry === EMPTY;
      }
    }
  }

  /**
   * Deletes from the current table by shifting later entries of the probe run back, so that no
   * tombstones lengthen probes under churn (a block is created and deleted for every block an
   * engine stores and evicts).
   */
  #eraseShifting(hash: number, id: number): boolean {
    const table = this.#table;
    const capacity = table.length;
    const next = (slot: number) => (slot + 1 === capacity ? 0 : slot + 1);
    let hole = homeSlot(hash, capacity);
    for (; ; hole = next(hole)) {
      const entry = table[hole] as number;
      if (entry === EMPTY) return false;
      if ((entry & ID_MASK) === id + 1) break;
    }
    for (let slot = next(hole); ; slot = next(slot)) {
      const entry = table[slot] as number;
      if (entry === EMPTY) break;
      const other = (entry & ID_MASK) - 1;
      const home = homeSlot(
        keyHash(
          this.#records.get(other, SCOPE),
          this.#records.get(other, HIGH),
          this.#records.get(other, LOW),
        ),
        capacity,
      );
      // The entry may fill the hole unless its home lies cyclically in (hole, slot].
      const homeAfterHole =
        hole <= slot ? home > hole && home <= slot : home > hole || home <= slot;
      if (!homeAfterHole) {
        table[hole] = entry;
        hole = slot;
      }
    }
    table[hole] = EMPTY;
    return true;
  }

  /** Deletes from the table being drained: a tombstone, so the drain's position stays valid. */
  #erase(table: Uint32Array, hash: number, id: number): boolean {
    const capacity = table.length;
    for (let slot = homeSlot(hash, capacity); ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      const entry = table[slot] as number;
      if (entry === EMPTY) return false;
      if (entry !== TOMBSTONE && (entry & ID_MASK) === id + 1) {
        table[slot] = TOMBSTONE;
        return true;
      }
    }
  }

  /**
   * Starts draining the table into one sized for the live blocks at 5/8 load; tables run from 1/5
   * to 4/5 full, about 5.5 bytes of table per block while growing. The drain moves MIGRATE_STEP
   * old slots per write, so it ends within (old slots / MIGRATE_STEP) writes: long before the new
   * table, at most 5/8 full when it starts, can fill to 4/5.
   */
  #resize(): void {
    this.#old = this.#table;
    this.#migrateAt = 0;
    this.#table = new Uint32Array(Math.max(MIN_TABLE, Math.ceil(this.#live * 1.6)));
    this.#used = 0;
  }

  #migrate(slots: number): void {
    const old = this.#old;
    if (old === undefined) return;
    const end = Math.min(old.length, this.#migrateAt + slots);
    for (let slot = this.#migrateAt; slot < end; slot++) {
      const entry = old[slot] as number;
      if (entry === EMPTY || entry === TOMBSTONE) continue;
      const id = (entry & ID_MASK) - 1;
      const hash = keyHash(
        this.#records.get(id, SCOPE),
        this.#records.get(id, HIGH),
        this.#records.get(id, LOW),
      );
      if (this.#place(this.#table, hash, id)) this.#used++;
    }
    this.#migrateAt = end;
    if (end === old.length) this.#old = undefined;
  }
}

/** A table slot holds a 5-bit tag of the key's hash above the block id + 1 (27 bits). */
const ID_BITS = 27;
const ID_MASK = (1 << ID_BITS) - 1;
const TAG_MASK = 31;
/** The most blocks the store holds: ids + 1 fit 27 bits, all ones being the tombstone. */
export const MAX_BLOCKS = ID_MASK - 2;

/** A slot in [0, capacity) from the hash's high bits (the tag uses the low ones). */
function homeSlot(hash: number, capacity: number): number {
  return Math.floor(((hash >>> 0) * capacity) / 4294967296);
}

/** The high bit of a block's `tokens`: the block has many holders and is indexed per replica. */
export const HOT_BIT = 0x80000000;

function keyHash(scope: number, high: number, low: number): number {
  return mix32(low ^ mix32(high ^ mix32(scope + 0x9e3779b9)));
}
