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

/*
 * Writers for hand-written encoders of hot messages. Each writes one value at `pos` of a buffer the
 * caller made large enough and returns the position after it, writing what protobuf-es's
 * `BinaryWriter` does for the same value; the caller validates values first (`checkUint32`,
 * `checkInt32`). Plain functions of (bytes, position, value), which the compiler inlines into the
 * encoder, rather than methods of a writer object.
 */

/** Writes a uint32 varint; `value` is an integer from 0 to 2^32 - 1. */
export function putUint32(bytes: Uint8Array, pos: number, value: number): number {
  let at = pos;
  let rest = value;
  while (rest >= 0x80) {
    bytes[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  bytes[at++] = rest;
  return at;
}

/** Writes an int32 varint; a negative value as 10 bytes, sign-extended to 64 bits. */
export function putInt32(bytes: Uint8Array, pos: number, value: number): number {
  if (value >= 0) return putUint32(bytes, pos, value);
  let at = pos;
  let rest = value;
  // As protobuf-es: 9 bytes of 7 bits each, the arithmetic shift filling in the sign, then a 1.
  for (let index = 0; index < 9; index++) {
    bytes[at++] = (rest & 0x7f) | 0x80;
    rest >>= 7;
  }
  bytes[at++] = 0x01;
  return at;
}

/** Writes a double, 8 bytes little-endian, through `view`, a view of the whole buffer. */
export function putDouble(view: DataView, pos: number, value: number): number {
  view.setFloat64(pos, value, true);
  return pos + 8;
}

/**
 * Writes a string field's length prefix and UTF-8 bytes; `byteLength` is `utf8Length(text)`.
 * A lone surrogate becomes U+FFFD, as TextEncoder writes it.
 */
export function putString(
  bytes: Uint8Array,
  pos: number,
  text: string,
  byteLength: number,
): number {
  let at = putUint32(bytes, pos, byteLength);
  const length = text.length;
  for (let index = 0; index < length; index++) {
    let unit = text.charCodeAt(index);
    if (unit < 0x80) {
      bytes[at++] = unit;
    } else if (unit < 0x800) {
      bytes[at++] = 0xc0 | (unit >> 6);
      bytes[at++] = 0x80 | (unit & 0x3f);
    } else if (isHighSurrogate(unit) && isLowSurrogate(text.charCodeAt(index + 1))) {
      const point = 0x10000 + ((unit - 0xd800) << 10) + (text.charCodeAt(++index) - 0xdc00);
      bytes[at++] = 0xf0 | (point >> 18);
      bytes[at++] = 0x80 | ((point >> 12) & 0x3f);
      bytes[at++] = 0x80 | ((point >> 6) & 0x3f);
      bytes[at++] = 0x80 | (point & 0x3f);
    } else {
      if (isHighSurrogate(unit) || isLowSurrogate(unit)) unit = 0xfffd;
      bytes[at++] = 0xe0 | (unit >> 12);
      bytes[at++] = 0x80 | ((unit >> 6) & 0x3f);
      bytes[at++] = 0x80 | (unit & 0x3f);
    }
  }
  return at;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** False for NaN, which `charCodeAt` returns past the end. */
function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
