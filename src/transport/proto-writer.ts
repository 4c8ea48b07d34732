import { WireType } from "./proto-reader.js";

/**
 * Encoded size in bytes of a uint32 varint. `value` must be an integer from 0 to 2^32 - 1 (see
 * {@link checkUint32}).
 */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Encoded size in bytes of an int32 varint: a negative value takes 10, sign-extended to 64 bits. */
export function int32Size(value: number): number {
  return value < 0 ? 10 : varintSize(value);
}

/**
 * Bytes `text` takes in UTF-8 as TextEncoder (and so protobuf-es) writes it: a lone surrogate
 * becomes U+FFFD, 3 bytes. O(text.length).
 */
export function utf8Length(text: string): number {
  const length = text.length;
  let bytes = length;
  for (let index = 0; index < length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (isHighSurrogate(unit) && isLowSurrogate(text.charCodeAt(index + 1))) {
      bytes += 2; // 4 bytes for the pair of 2 units
      index++;
    } else {
      bytes += 2; // 3 bytes, a lone surrogate's U+FFFD included
    }
  }
  return bytes;
}

/**
 * Throws protobuf-es's error unless `value` is an integer from 0 to 2^32 - 1; `field` is the
 * field's full name, e.g. `inferencecache.v1.ReplicaHint.matched_blocks`.
 */
export function checkUint32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`cannot encode field ${field} to binary: invalid uint32: ${value}`);
  }
}

/** Throws protobuf-es's error unless `value` is an integer from -2^31 to 2^31 - 1. */
export function checkInt32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new Error(`cannot encode field ${field} to binary: invalid int32: ${value}`);
  }
}

/** Scratch for writing doubles; on a big-endian host its bytes are written in reverse. */
const float64 = new Float64Array(1);
const float64Bytes = new Uint8Array(float64.buffer);
const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Writes one protobuf message into a buffer of the size the caller computed beforehand, for
 * hand-written encoders of hot messages. It writes exactly what protobuf-es's `BinaryWriter` does
 * for the same calls; unlike it, nothing is buffered and joined: nested lengths are known up front.
 * The caller validates values first (`checkUint32`, `checkInt32`); the writer does not.
 */
export class ProtoWriter {
  readonly #bytes: Buffer;
  #pos = 0;

  /** Allocates `size` bytes (`Buffer.allocUnsafe`: from Node's pool when small), all of them to be written. */
  constructor(size: number) {
    this.#bytes = Buffer.allocUnsafe(size);
  }

  /** Writes a tag. */
  tag(fieldNo: number, wireType: number): this {
    return this.uint32(((fieldNo << 3) | wireType) >>> 0);
  }

  /** Writes a uint32 varint. */
  uint32(value: number): this {
    const bytes = this.#bytes;
    let pos = this.#pos;
    let rest = value;
    while (rest >= 0x80) {
      bytes[pos++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    bytes[pos++] = rest;
    this.#pos = pos;
    return this;
  }

  /** Writes an int32 varint; a negative value as 10 bytes, sign-extended to 64 bits. */
  int32(value: number): this {
    if (value >= 0) return this.uint32(value);
    const bytes = this.#bytes;
    let pos = this.#pos;
    let rest = value;
    // As protobuf-es: 9 bytes of 7 bits each, the arithmetic shift filling in the sign, then a 1.
    for (let index = 0; index < 9; index++) {
      bytes[pos++] = (rest & 0x7f) | 0x80;
      rest >>= 7;
    }
    bytes[pos++] = 0x01;
    this.#pos = pos;
    return this;
  }

  /** Writes a bool varint. */
  bool(value: boolean): this {
    this.#bytes[this.#pos++] = value ? 1 : 0;
    return this;
  }

  /** Writes a double, 8 bytes little-endian. */
  double(value: number): this {
    float64[0] = value;
    const bytes = this.#bytes;
    const pos = this.#pos;
    for (let index = 0; index < 8; index++) {
      bytes[pos + index] = float64Bytes[hostIsLittleEndian ? index : 7 - index] as number;
    }
    this.#pos = pos + 8;
    return this;
  }

  /**
   * Writes a string field's length prefix and UTF-8 bytes; `byteLength` is `utf8Length(text)`,
   * which the caller computed for its own sizes already.
   */
  string(text: string, byteLength: number): this {
    this.uint32(byteLength);
    const bytes = this.#bytes;
    let pos = this.#pos;
    const length = text.length;
    for (let index = 0; index < length; index++) {
      let unit = text.charCodeAt(index);
      if (unit < 0x80) {
        bytes[pos++] = unit;
      } else if (unit < 0x800) {
        bytes[pos++] = 0xc0 | (unit >> 6);
        bytes[pos++] = 0x80 | (unit & 0x3f);
      } else if (isHighSurrogate(unit) && isLowSurrogate(text.charCodeAt(index + 1))) {
        const point = 0x10000 + ((unit - 0xd800) << 10) + (text.charCodeAt(++index) - 0xdc00);
        bytes[pos++] = 0xf0 | (point >> 18);
        bytes[pos++] = 0x80 | ((point >> 12) & 0x3f);
        bytes[pos++] = 0x80 | ((point >> 6) & 0x3f);
        bytes[pos++] = 0x80 | (point & 0x3f);
      } else {
        if (isHighSurrogate(unit) || isLowSurrogate(unit)) unit = 0xfffd;
        bytes[pos++] = 0xe0 | (unit >> 12);
        bytes[pos++] = 0x80 | ((unit >> 6) & 0x3f);
        bytes[pos++] = 0x80 | (unit & 0x3f);
      }
    }
    this.#pos = pos;
    return this;
  }

  /** Writes the tag and length prefix of a nested message of `size` bytes, to be written next. */
  fork(fieldNo: number, size: number): this {
    return this.tag(fieldNo, WireType.LengthDelimited).uint32(size);
  }

  /**
   * The encoded message. Throws when fewer or more bytes were written than allocated, which is a
   * bug in the caller's size computation (the rest would be stale pool memory).
   */
  finish(): Buffer {
    if (this.#pos !== this.#bytes.length) {
      throw new Error(`encoded ${this.#pos} bytes into a buffer of ${this.#bytes.length}`);
    }
    return this.#bytes;
  }
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** False for NaN, which `charCodeAt` returns past the end. */
function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
