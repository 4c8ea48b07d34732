import { NIL } from "./block-store.js";

/** Holder slots per chunk: one bit each in a 32-bit occupancy mask. */
export const CHUNK_BITS = 5;
const CHUNK_SLOTS = 1 << CHUNK_BITS;
const FULL = -1;

/**
 * Allocates holder slots in chunks of 32 owned by one group (a replica under one hash scheme), so a
 * slot's group is its chunk's owner and no holder stores its replica. A group's chunks are kept on
 * two lists, those with a free slot and those without, so allocating and freeing are O(1); clearing
 * a group visits only its own chunks. A chunk whose last slot is freed goes back to a shared pool
 * and is reused before new chunks are made.
 *
 * Slot ids are `chunk * 32 + position`. The slab only hands out ids: the holder's fields live in the
 * index's own paged arrays, sized to {@link HolderSlab.slotCapacity}.
 */
export class HolderSlab {
  #owner = new Uint32Array(1024);
  /** Occupancy bits of each chunk. */
  #used = new Int32Array(1024);
  #next = new Uint32Array(1024);
  #prev = new Uint32Array(1024);
  #chunks = 0;
  #freeChunks = NIL;
  /** Per group id: first chunk with a free slot, first full chunk. */
  #spaceHead = new Uint32Array(64).fill(NIL);
  #fullHead = new Uint32Array(64).fill(NIL);

  /** One past the highest slot id ever handed out. */
  get slotCapacity(): number {
    return this.#chunks << CHUNK_BITS;
  }

  /** Bytes of the chunk tables. */
  get byteLength(): number {
    return (
      this.#owner.byteLength +
      this.#used.byteLength +
      this.#next.byteLength +
      this.#prev.byteLength +
      this.#spaceHead.byteLength +
      this.#fullHead.byteLength
    );
  }

  /** The group owning `slot`. */
  owner(slot: number): number {
    return this.#owner[slot >>> CHUNK_BITS] as number;
  }

  /** Prepares the per-group lists for group ids below `groups`. */
  ensureGroups(groups: number): void {
    if (groups <= this.#spaceHead.length) return;
    let size = this.#spaceHead.length;
    while (size < groups) size *= 2;
    this.#spaceHead = grow(this.#spaceHead, size, NIL);
    this.#fullHead = grow(this.#fullHead, size, NIL);
  }

  /** A free slot for `group`. Cost: O(1). */
  allocate(group: number): number {
    let chunk = this.#spaceHead[group] as number;
    if (chunk === NIL) {
      chunk = this.#newChunk(group);
      this.#push(this.#spaceHead, group, chunk);
    }
    const used = this.#used[chunk] as number;
    const position = 31 - Math.clz32(~used & (used + 1));
    const now = used | (1 << position);
    this.#used[chunk] = now;
    if (now === FULL) {
      this.#unlink(this.#spaceHead, group, chunk);
      this.#push(this.#fullHead, group, chunk);
    }
    return (chunk << CHUNK_BITS) | position;
  }

  /** Frees `slot`. Cost: O(1). */
  free(slot: number): void {
    const chunk = slot >>> CHUNK_BITS;
    const group = this.#owner[chunk] as number;
    const used = this.#used[chunk] as number;
    const now = used & ~(1 << (slot & (CHUNK_SLOTS - 1)));
    this.#used[chunk] = now;
    if (used === FULL) {
      this.#unlink(this.#fullHead, group, chunk);
      this.#push(this.#spaceHead, group, chunk);
    }
    if (now === 0) {
      this.#unlink(this.#spaceHead, group, chunk);
      this.#next[chunk] = this.#freeChunks;
      this.#freeChunks = chunk;
    }
  }

  /** Any slot `group` holds, or {@link NIL} when it holds none. For clearing a group slot by slot. */
  anySlot(group: number): number {
    let chunk = this.#fullHead[group] as number;
    if (chunk === NIL) chunk = this.#spaceHead[group] as number;
    if (chunk === NIL) return NIL;
    const used = this.#used[chunk] as number;
    return (chunk << CHUNK_BITS) | (31 - Math.clz32(used & -used));
  }

  /** Every slot `group` holds, in no particular order. Cost: O(its chunks). */
  slotsOf(group: number): number[] {
    const slots: number[] = [];
    for (const heads of [this.#fullHead, this.#spaceHead]) {
      for (let chunk = heads[group] as number; chunk !== NIL; chunk = this.#next[chunk] as number) {
        const used = this.#used[chunk] as number;
        for (let position = 0; position < CHUNK_SLOTS; position++) {
          if ((used & (1 << position)) !== 0) slots.push((chunk << CHUNK_BITS) | position);
        }
      }
    }
    return slots;
  }

  #newChunk(group: number): number {
    let chunk = this.#freeChunks;
    if (chunk === NIL) {
      chunk = this.#chunks++;
      if (chunk >= this.#owner.length) {
        const size = Math.ceil(this.#owner.length * 1.5);
        this.#owner = grow(this.#owner, size, 0);
        this.#used = growSigned(this.#used, size);
        this.#next = grow(this.#next, size, 0);
        this.#prev = grow(this.#prev, size, 0);
      }
    } else {
      this.#freeChunks = this.#next[chunk] as number;
    }
    this.#owner[chunk] = group;
    this.#used[chunk] = 0;
    return chunk;
  }

  #push(heads: Uint32Array, group: number, chunk: number): void {
    const first = heads[group] as number;
    this.#prev[chunk] = NIL;
    this.#next[chunk] = first;
    if (first !== NIL) this.#prev[first] = chunk;
    heads[group] = chunk;
  }

  #unlink(heads: Uint32Array, group: number, chunk: number): void {
    const prev = this.#prev[chunk] as number;
    const next = this.#next[chunk] as number;
    if (prev === NIL) heads[group] = next;
    else this.#next[prev] = next;
    if (next !== NIL) this.#prev[next] = prev;
  }
}

function grow(array: Uint32Array, size: number, fill: number): Uint32Array<ArrayBuffer> {
  const grown = new Uint32Array(size).fill(fill);
  grown.set(array);
  return grown;
}

function growSigned(array: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const grown = new Int32Array(size);
  grown.set(array);
  return grown;
}
