import { PagedRecords } from "./paged-records.js";
import { mix32 } from "./prefix-fingerprint.js";

/**
 * How many keys of a chain a lookup resolves at a time with {@link BlockStore.findChain}: `first`,
 * then twice as many each time, up to `max`. Most chains stop early, their tail new to the index
 * (in the Mooncake replay, 62% of lookups match the head block only), so a short first window
 * spares their tail's misses; a long chain still reaches full windows within a few.
 */
export const CHAIN_WINDOWS = { first: 4, max: 16 } as const;

/** "No block" / "no holder": the id no record ever gets. */
export const NIL = 0xffffffff;

/** Fields of a block record; free ids chain through HEAD. */
const HIGH = 0;
const LOW = 1;
const SCOPE = 2;
const HEAD = 3;
const TOKENS = 4;
/** A table slot that holds nothing. */
const EMPTY = 0;
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
  /**
   * Mixed into every key's hash. Unknown to clients, so that they cannot choose prefix hashes that
   * pile up in one slot of the table (every scope shares it): a long run there would slow every
   * write and lookup, and a run of more than MAX_DISTANCE entries makes the table grow.
   */
  readonly #seed: number;
  /** One record per block: HIGH, LOW, SCOPE, HEAD, TOKENS. */
  readonly #records = new PagedRecords(5);
  #nextFresh = 0;
  #freeList = NIL;
  #live = 0;

  #table = new Uint32Array(MIN_TABLE);
  /** Occupied slots of `#table`. */
  #used = 0;
  /** The table being drained during a resize, and the next slot of it to move. */
  #old: Uint32Array | undefined;
  #migrateAt = 0;
  /**
   * Entries (block id + 1) that no slot of the table could take: a run of more than MAX_DISTANCE
   * slots that growing the table did not split, which takes keys crafted with the seed in hand.
   * find() searches it linearly when the table misses; empty in practice.
   */
  #overflow: number[] = [];
  /** warm()'s scratch: the home-slot entry of each key. */
  #warmSlots = new Uint32Array(64);
  /** What warm() read ahead, kept so that the reads are not optimised away. */
  #warmed = 0;

  /** @param seed Mixed into the key hashes. @default a random 32-bit value */
  constructor(seed: number = randomSeed()) {
    this.#seed = seed >>> 0;
  }

  /** The first holder of the block's recency-ordered holder list, or NIL. */
  headOf(block: number): number {
    return this.#records.get(block, HEAD);
  }

  setHead(block: number, holder: number): void {
    this.#records.set(block, HEAD, holder);
  }

  /**
   * The block's token count. Kept apart from the hot flag sharing its field, so that what this
   * returns is a small integer: when V8 does not inline a call, it boxes a result of 2^30 or more
   * into a heap object, and lookups read this for every block of a chain.
   */
  tokenCountOf(block: number): number {
    return this.#records.get(block, TOKENS) & TOKEN_MASK;
  }

  /** Sets the block's token count (at most {@link TOKEN_MASK}), keeping whether it is hot. */
  setTokenCount(block: number, tokens: number): void {
    const hot = this.#records.get(block, TOKENS) & HOT_BIT;
    this.#records.set(block, TOKENS, (tokens | hot) >>> 0);
  }

  /** Whether the block has many holders, indexed per replica (see CompactCacheIndex). */
  isHot(block: number): boolean {
    return (this.#records.get(block, TOKENS) & HOT_BIT) !== 0;
  }

  setHot(block: number, hot: boolean): void {
    const tokens = this.#records.get(block, TOKENS) & TOKEN_MASK;
    this.#records.set(block, TOKENS, hot ? (tokens | HOT_BIT) >>> 0 : tokens);
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
    const hash = keyHash(this.#seed, scope, high, low);
    let found = this.#probe(this.#table, hash, scope, high, low);
    if (found === NIL && this.#old !== undefined) {
      found = this.#probe(this.#old, hash, scope, high, low);
    }
    if (found === NIL && this.#overflow.length > 0) found = this.#findOverflow(scope, high, low);
    return found;
  }

  #findOverflow(scope: number, high: number, low: number): number {
    for (const entry of this.#overflow) {
      if (this.#holdsKey(entry - 1, scope, high, low)) return entry - 1;
    }
    return NIL;
  }

  /**
   * Finds the blocks of keys `from` to `to` (exclusive) of a chain (`keys[2i]`, `keys[2i + 1]` =
   * high, low) in `scope`, in order into `out`, up to the first key that is not stored; returns the
   * index of that key, or `to`: what a `find` per key gives. `out[from - 1]`, when `from > 0`, must
   * hold the block of key `from - 1`.
   *
   * The blocks of a chain stored in one write are created one after another, so their ids are
   * adjacent (descending: writes create the deepest block first). Each key is therefore first
   * compared with the records beside its predecessor's, which sit in the same cache line or the
   * next; only when neither matches is the table probed. On a table larger than the cache, a
   * chain stored in a few writes costs a few misses rather than one per block. Callers go in
   * windows ({@link CHAIN_WINDOWS}), so that a chain that stops early is not fingerprinted to its
   * end. Cost: O(to - from) expected.
   */
  findChain(scope: number, keys: Uint32Array, from: number, to: number, out: Uint32Array): number {
    let previous = from > 0 ? (out[from - 1] as number) : NIL;
    for (let i = from; i < to; i++) {
      const high = keys[2 * i] as number;
      const low = keys[2 * i + 1] as number;
      let found = NIL;
      if (previous !== NIL) {
        if (this.#holdsKey(previous - 1, scope, high, low)) found = previous - 1;
        else if (this.#holdsKey(previous + 1, scope, high, low)) found = previous + 1;
      }
      if (found === NIL) {
        found = this.find(scope, high, low);
        if (found === NIL) return i;
      }
      out[i] = found;
      previous = found;
    }
    return to;
  }

  /** Whether `id` is a live block's id and the block's key is (scope, high, low). */
  #holdsKey(id: number, scope: number, high: number, low: number): boolean {
    // A deleted block's SCOPE is NIL, which no scope is; ids from -1 (NIL - 0xffffffff) up are
    // rejected below 0 and at or past the ids ever handed out.
    return (
      id >= 0 &&
      id < this.#nextFresh &&
      this.#records.get(id, LOW) === low &&
      this.#records.get(id, HIGH) === high &&
      this.#records.get(id, SCOPE) === scope
    );
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
    this.#insert(keyHash(this.#seed, scope, high, low), id);
    this.#migrate(MIGRATE_STEP);
    return id;
  }

  /** Deletes a block that has no holders left; its id is reused. */
  delete(id: number): void {
    const hash = this.#hashOf(id);
    if (this.#eraseShifting(hash, id)) this.#used--;
    else if (this.#old === undefined || !this.#erase(this.#old, hash, id)) {
      const at = this.#overflow.indexOf(id + 1);
      if (at >= 0) this.#overflow.splice(at, 1);
    }
    // No key matches a free record (see #holdsKey); create() sets SCOPE again.
    this.#records.set(id, SCOPE, NIL);
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

  /**
   * Reads, for each of `count` keys (`keys[2i]`, `keys[2i + 1]` = high, low), its home slot and the
   * record of the entry found there, so that the finds that follow hit the cache. Loads of separate
   * keys do not wait on one another here, while inside `find` each waits on the last; for a batch of
   * blocks this overlaps their cache misses. Changes nothing.
   */
  warm(scope: number, keys: Uint32Array, count: number): void {
    const table = this.#table;
    const capacity = table.length;
    const slots = this.#warmSlots.length >= count ? this.#warmSlots : this.#growWarm(count);
    for (let i = 0; i < count; i++) {
      const hash = keyHash(this.#seed, scope, keys[2 * i] as number, keys[2 * i + 1] as number);
      slots[i] = table[homeSlot(hash, capacity)] as number;
    }
    let touched = 0;
    for (let i = 0; i < count; i++) {
      const entry = slots[i] as number;
      // A find reads the key of an entry in the home slot only when the entry is at home too.
      if (entry === EMPTY || entry >>> ID_BITS !== 0 || (entry & ID_MASK) === TOMBSTONE_ID)
        continue;
      touched ^= this.#records.get((entry & ID_MASK) - 1, LOW);
    }
    this.#warmed = touched;
  }

  /** What the last warm() read: of no use but to keep the reads from being removed. */
  get warmed(): number {
    return this.#warmed;
  }

  #growWarm(count: number): Uint32Array {
    this.#warmSlots = new Uint32Array(Math.max(count, this.#warmSlots.length * 2));
    return this.#warmSlots;
  }

  /** Moves up to `slots` slots of an in-progress resize; for idle time (sweeps). */
  migrate(slots: number): void {
    this.#migrate(slots);
  }

  /**
   * Robin Hood probing: every slot stores its entry's distance from its home slot, so a probe only
   * reads the keys of entries sharing its home, and stops as soon as it meets an entry closer to
   * its own home than the probe is (the key would have taken that slot).
   */
  #probe(table: Uint32Array, hash: number, scope: number, high: number, low: number): number {
    const capacity = table.length;
    let slot = homeSlot(hash, capacity);
    for (let distance = 0; ; distance++) {
      const entry = table[slot] as number;
      if (entry === EMPTY) return NIL;
      const entryDistance = entry >>> ID_BITS;
      if (entryDistance < distance) return NIL;
      if (entryDistance === distance && (entry & ID_MASK) !== TOMBSTONE_ID) {
        const id = (entry & ID_MASK) - 1;
        if (
          this.#records.get(id, LOW) === low &&
          this.#records.get(id, HIGH) === high &&
          this.#records.get(id, SCOPE) === scope
        ) {
          return id;
        }
      }
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  /**
   * Inserts `entry` (a block id + 1, not present) into `table`, displacing entries nearer their
   * home (Robin Hood). Returns 0 once every entry has a slot, or else the entry it is left
   * carrying when a distance would outgrow its bits: that entry, `entry` itself or one it
   * displaced, is then in no table, and the caller must place it (in a larger table).
   */
  #place(table: Uint32Array, hash: number, entry: number): number {
    const capacity = table.length;
    let slot = homeSlot(hash, capacity);
    let carried = entry;
    for (let distance = 0; ; distance++) {
      if (distance > MAX_DISTANCE) return carried;
      const current = table[slot] as number;
      if (current === EMPTY) {
        table[slot] = ((distance << ID_BITS) | carried) >>> 0;
        return 0;
      }
      const currentDistance = current >>> ID_BITS;
      if (currentDistance < distance) {
        table[slot] = ((distance << ID_BITS) | carried) >>> 0;
        carried = current & ID_MASK;
        distance = currentDistance;
      }
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  /** The slot holding `id` in `table`, or -1. Compares ids only: no key is read. */
  #slotOf(table: Uint32Array, hash: number, id: number): number {
    const capacity = table.length;
    let slot = homeSlot(hash, capacity);
    for (let distance = 0; ; distance++) {
      const entry = table[slot] as number;
      if (entry === EMPTY || entry >>> ID_BITS < distance) return -1;
      if ((entry & ID_MASK) === id + 1) return slot;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  /**
   * Deletes from the current table by shifting the rest of the run back one slot, each entry one
   * step nearer its home: no tombstones, and no key read.
   */
  #eraseShifting(hash: number, id: number): boolean {
    const table = this.#table;
    const capacity = table.length;
    let hole = this.#slotOf(table, hash, id);
    if (hole < 0) return false;
    for (;;) {
      const next = hole + 1 === capacity ? 0 : hole + 1;
      const entry = table[next] as number;
      if (entry === EMPTY || entry >>> ID_BITS === 0) break;
      table[hole] = (entry - (1 << ID_BITS)) >>> 0;
      hole = next;
    }
    table[hole] = EMPTY;
    return true;
  }

  /**
   * Deletes from the table being drained with a tombstone that keeps its distance, so the drain's
   * position stays valid and probes past it still stop where they should.
   */
  #erase(table: Uint32Array, hash: number, id: number): boolean {
    const slot = this.#slotOf(table, hash, id);
    if (slot < 0) return false;
    table[slot] = (((table[slot] as number) & ~ID_MASK) | TOMBSTONE_ID) >>> 0;
    return true;
  }

  /**
   * Starts draining the table into one sized for the live blocks at 5/8 load; tables run from 1/5
   * to 4/5 full, about 5.5 bytes of table per block while growing. The drain moves MIGRATE_STEP
   * old slots per write, so it ends within (old slots / MIGRATE_STEP) writes: long before the new
   * table, at most 5/8 full when it starts, can fill to 4/5.
   */
  #resize(capacity = Math.ceil(this.#live * 1.6)): void {
    this.#old = this.#table;
    this.#migrateAt = 0;
    this.#table = new Uint32Array(Math.max(MIN_TABLE, capacity));
    this.#used = 0;
  }

  /**
   * Inserts into the current table. A run longer than MAX_DISTANCE slots grows the table, which
   * splits the run, and the entry left over (the new one or one it displaced) is placed in the
   * larger one. With seeded hashes that takes dozens of keys with nearly equal hashes, so it is
   * not seen in practice. Should a run survive MAX_GROWTHS doublings, or the table be mostly empty
   * already (growing would not help), the entry left over goes to `#overflow`: no block is ever
   * lost, and crafted keys cannot make the table grow without end.
   */
  #insert(hash: number, id: number): void {
    let carried = this.#place(this.#table, hash, id + 1);
    for (
      let growths = 0;
      carried !== 0 && growths < MAX_GROWTHS && this.#used * 8 >= this.#table.length;
      growths++
    ) {
      // `carried` is in no table: the drain below cannot move it, and it is placed after.
      this.#migrate(Number.POSITIVE_INFINITY);
      this.#resize(this.#table.length * 2);
      this.#migrate(Number.POSITIVE_INFINITY);
      carried = this.#place(this.#table, this.#hashOf(carried - 1), carried);
    }
    // The table gained an entry, or traded the one left over for the new one.
    if (carried === 0) this.#used++;
    else this.#overflow.push(carried);
  }

  /** The table hash of block `id`'s key. */
  #hashOf(id: number): number {
    return keyHash(
      this.#seed,
      this.#records.get(id, SCOPE),
      this.#records.get(id, HIGH),
      this.#records.get(id, LOW),
    );
  }

  #migrate(slots: number): void {
    const old = this.#old;
    if (old === undefined) return;
    const end = Math.min(old.length, this.#migrateAt + slots);
    for (let slot = this.#migrateAt; slot < end; slot++) {
      const entry = old[slot] as number;
      if (entry === EMPTY || (entry & ID_MASK) === TOMBSTONE_ID) continue;
      const id = (entry & ID_MASK) - 1;
      this.#migrateAt = slot + 1;
      this.#insert(this.#hashOf(id), id);
      if (this.#old !== old) return;
    }
    this.#migrateAt = end;
    if (end === old.length) this.#old = undefined;
  }
}

/**
 * A table slot holds the entry's distance from its home slot (6 bits) above the block id + 1
 * (26 bits); all ones in the id bits is a tombstone (only in a table being drained).
 */
const ID_BITS = 26;
const ID_MASK = (1 << ID_BITS) - 1;
const TOMBSTONE_ID = ID_MASK;
const MAX_DISTANCE = 63;
/** Doublings one insert may cause before its entry left over goes to the overflow (see `#insert`). */
const MAX_GROWTHS = 4;
/** The most blocks the store holds: ids + 1 fit 26 bits, all ones being the tombstone. */
export const MAX_BLOCKS = ID_MASK - 2;

/** A slot in [0, capacity) from the hash's high bits (the tag uses the low ones). */
function homeSlot(hash: number, capacity: number): number {
  return Math.floor(((hash >>> 0) * capacity) / 4294967296);
}

/** The high bit of a block's TOKENS field: the block is hot (see {@link BlockStore.isHot}). */
const HOT_BIT = 0x80000000;
/** The rest of the field: the token count (MAX_TOKEN_COUNT, in types.ts, is this mask). */
export const TOKEN_MASK = 0x7fffffff;

function keyHash(seed: number, scope: number, high: number, low: number): number {
  return mix32(low ^ mix32(high ^ mix32((scope + 0x9e3779b9) ^ seed)));
}

/** A seed for {@link BlockStore}: kept from the index's clients, not from the process. */
function randomSeed(): number {
  return Math.floor(Math.random() * 4294967296);
}
