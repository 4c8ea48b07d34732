/** Records per page: 64 Ki. */
const PAGE_BITS = 16;
const PAGE_RECORDS = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_RECORDS - 1;

/**
 * A growable table of fixed-size records of unsigned 32-bit fields, stored in fixed-size pages.
 * A record's fields are adjacent, so reading or updating one record touches one cache line rather
 * than one per field. Growing adds a page and never copies what is stored, so a write that grows
 * the index costs the same as any other and lookups never wait behind a copy of millions of
 * records. Fields start at 0.
 */
export class PagedRecords {
  readonly #stride: number;
  readonly #pages: Uint32Array[] = [];

  /** @param stride Fields per record. */
  constructor(stride: number) {
    this.#stride = stride;
  }

  /** Records addressable without growing. */
  get capacity(): number {
    return this.#pages.length * PAGE_RECORDS;
  }

  /** Bytes held by the pages. */
  get byteLength(): number {
    return this.#pages.length * PAGE_RECORDS * this.#stride * 4;
  }

  /** Adds pages until record `index` exists. */
  ensure(index: number): void {
    while (index >= this.capacity) {
      this.#pages.push(new Uint32Array(PAGE_RECORDS * this.#stride));
    }
  }

  get(index: number, field: number): number {
    const page = this.#pages[index >>> PAGE_BITS] as Uint32Array;
    return page[(index & PAGE_MASK) * this.#stride + field] as number;
  }

  set(index: number, field: number, value: number): void {
    const page = this.#pages[index >>> PAGE_BITS] as Uint32Array;
    page[(index & PAGE_MASK) * this.#stride + field] = value;
  }
}
