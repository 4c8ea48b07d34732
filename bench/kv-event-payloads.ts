/**
 * KV-event payloads for the stream benchmark, in vLLM's current layout (docs/vllm-kv-events.md):
 * the batch `[ts, events, data_parallel_rank]`, each event a map tagged by "type". A small msgpack
 * writer for exactly these shapes, so the benchmark's publisher needs nothing from test/.
 */

/** One engine step: store a chain of new blocks after `parent`, evict an older chain. */
export interface BenchBatch {
  readonly ts: number;
  readonly stored: readonly bigint[];
  readonly parent: bigint | undefined;
  readonly blockSize: number;
  readonly removed: readonly bigint[];
}

/** Encodes `batch` as msgpack: `[ts, [BlockStored{...}, BlockRemoved{...}], nil]`. */
export function encodeBenchBatch(batch: BenchBatch): Uint8Array {
  const out = new Writer();
  out.arrayHeader(3);
  out.float64(batch.ts);
  out.arrayHeader(2);

  out.mapHeader(6);
  out.str("type");
  out.str("BlockStored");
  out.str("block_hashes");
  out.arrayHeader(batch.stored.length);
  for (const hash of batch.stored) out.uint64(hash);
  out.str("parent_block_hash");
  if (batch.parent === undefined) out.nil();
  else out.uint64(batch.parent);
  out.str("token_ids");
  const tokens = batch.stored.length * batch.blockSize;
  out.arrayHeader(tokens);
  for (let i = 0; i < tokens; i++) out.uint(1000 + ((i * 7919) % 30000));
  out.str("block_size");
  out.uint(batch.blockSize);
  out.str("medium");
  out.str("GPU");

  out.mapHeader(3);
  out.str("type");
  out.str("BlockRemoved");
  out.str("block_hashes");
  out.arrayHeader(batch.removed.length);
  for (const hash of batch.removed) out.uint64(hash);
  out.str("medium");
  out.str("GPU");

  out.nil();
  return out.bytes();
}

class Writer {
  #buffer = new Uint8Array(1024);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;

  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  nil(): void {
    this.#byte(0xc0);
  }

  uint(value: number): void {
    if (value < 0x80) this.#byte(value);
    else if (value < 0x100) this.#bytes(0xcc, value);
    else if (value < 0x10000) {
      this.#reserve(3);
      this.#buffer[this.#length] = 0xcd;
      this.#view.setUint16(this.#length + 1, value);
      this.#length += 3;
    } else {
      this.#reserve(5);
      this.#buffer[this.#length] = 0xce;
      this.#view.setUint32(this.#length + 1, value);
      this.#length += 5;
    }
  }

  /** Always the 9-byte form, as vLLM's 64-bit hashes mostly are. */
  uint64(value: bigint): void {
    this.#reserve(9);
    this.#buffer[this.#length] = 0xcf;
    this.#view.setBigUint64(this.#length + 1, value);
    this.#length += 9;
  }

  float64(value: number): void {
    this.#reserve(9);
    this.#buffer[this.#length] = 0xcb;
    this.#view.setFloat64(this.#length + 1, value);
    this.#length += 9;
  }

  str(value: string): void {
    // ASCII only here: one byte per character, fixstr.
    this.#byte(0xa0 | value.length);
    this.#reserve(value.length);
    for (let i = 0; i < value.length; i++) this.#buffer[this.#length++] = value.charCodeAt(i);
  }

  arrayHeader(length: number): void {
    if (length < 16) this.#byte(0x90 | length);
    else {
      this.#reserve(3);
      this.#buffer[this.#length] = 0xdc;
      this.#view.setUint16(this.#length + 1, length);
      this.#length += 3;
    }
  }

  mapHeader(length: number): void {
    this.#byte(0x80 | length);
  }

  #byte(value: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  #bytes(a: number, b: number): void {
    this.#reserve(2);
    this.#buffer[this.#length++] = a;
    this.#buffer[this.#length++] = b;
  }

  #reserve(more: number): void {
    if (this.#length + more <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + more));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }
}
