/** Slots per page: 64 Ki, so a page of one field is 256 KiB. */
const PAGE_BITS = 16;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;

/**
 * A growable array of unsigned 32-bit integers stored in fixed-size pages. Growing adds a page and
 * never copies what is already stored, so a write that grows the index costs the same as any other
 * and lookups never wait behind a copy of millions of slots. Slots start at 0.
 */
export class PagedU32 {
  readonly #pages: Uint32Array[] = [];

  /** Slots addressable without growing. */
  get capacity(): number {
    return this.#pages.length * PAGE_SIZE;
  }

  /** Bytes held by the pages. */
  get byteLength(): number {
    return this.#pages.length * PAGE_SIZE * 4;
  }

  /** Adds pages until slot `index` exists. */
  ensure(index: number): void {
    while (index >= this.capacity) this.#pages.push(new Uint32Array(PAGE_SIZE));
  }

  get(index: number): number {
    return (this.#pages[index >>> PAGE_BITS] as Uint32Array)[index & PAGE_MASK] as number;
  }

  set(index: number, value: number): void {
    (this.#pages[index >>> PAGE_BITS] as Uint32Array)[index & PAGE_MASK] = value;
  }
}
