/**
 * A msgpack encoder for the payloads engines send, for tests and the stream benchmark's publisher.
 * It writes whatever encoding widths the caller asks for, so decoders are tested against every form
 * the format allows, not only the one a particular encoder happens to pick. Not built for speed.
 */

/**
 * A value to encode.
 * - `number`: a safe integer is written as an integer in its smallest format, anything else as
 *   float64 (so `1.0` is the integer 1; use {@link MsgpackFloat} to force a float).
 * - `bigint`: an integer in its smallest format; must fit int64 or uint64.
 * - `Uint8Array`: bin. Arrays: array. {@link MsgpackMap}: map (entries in order, duplicates kept).
 */
export type MsgpackValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly MsgpackValue[]
  | MsgpackMap
  | MsgpackInt
  | MsgpackFloat
  | MsgpackExt;

/** A map, written with its entries in this order. */
export class MsgpackMap {
  readonly entries: readonly (readonly [MsgpackValue, MsgpackValue])[];

  constructor(entries: readonly (readonly [MsgpackValue, MsgpackValue])[]) {
    this.entries = entries;
  }

  /** A map with string keys, in the record's key order. */
  static of(record: Readonly<Record<string, MsgpackValue>>): MsgpackMap {
    return new MsgpackMap(Object.entries(record));
  }
}

/** Every msgpack integer format. */
export type IntFormat =
  | "fixint"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "int8"
  | "int16"
  | "int32"
  | "int64";

/** An integer written in a given format; encoding throws if the value does not fit it. */
export class MsgpackInt {
  readonly value: bigint;
  readonly format: IntFormat;

  constructor(value: bigint | number, format: IntFormat) {
    this.value = BigInt(value);
    this.format = format;
  }
}

/** A float written as float32 (rounded) or float64. */
export class MsgpackFloat {
  readonly value: number;
  readonly format: "float32" | "float64";

  constructor(value: number, format: "float32" | "float64" = "float64") {
    this.value = value;
    this.format = format;
  }
}

/** An extension value: fixext when the data is 1, 2, 4, 8 or 16 bytes long, ext 8/16/32 otherwise. */
export class MsgpackExt {
  readonly type: number;
  readonly data: Uint8Array;

  constructor(type: number, data: Uint8Array) {
    this.type = type;
    this.data = data;
  }
}

/** How to encode. */
export interface MsgpackEncodeOptions {
  /**
   * The smallest width of str, bin, array and map length headers: `8`, `16` or `32` bits even when a
   * shorter form would do. Arrays and maps have no 8-bit form and use their fix form for `8`.
   * @default "smallest"
   */
  readonly lengthWidth?: "smallest" | 8 | 16 | 32;
}

/** Encodes `value` as msgpack. */
export function encodeMsgpack(value: MsgpackValue, options: MsgpackEncodeOptions = {}): Uint8Array {
  const out: number[] = [];
  write(out, value, options.lengthWidth ?? "smallest");
  return Uint8Array.from(out);
}

const RANGES: Record<IntFormat, readonly [bigint, bigint]> = {
  fixint: [-32n, 127n],
  uint8: [0n, 0xffn],
  uint16: [0n, 0xffffn],
  uint32: [0n, 0xffff_ffffn],
  uint64: [0n, 0xffff_ffff_ffff_ffffn],
  int8: [-0x80n, 0x7fn],
  int16: [-0x8000n, 0x7fffn],
  int32: [-0x8000_0000n, 0x7fff_ffffn],
  int64: [-0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn],
};

/** Every integer format that can hold `value`, smallest first. */
export function intFormatsFor(value: bigint | number): IntFormat[] {
  const v = BigInt(value);
  return (Object.keys(RANGES) as IntFormat[])
    .filter((format) => {
      const [min, max] = RANGES[format];
      return v >= min && v <= max;
    })
    .sort((a, b) => WIDTHS[a] - WIDTHS[b]);
}

/** Whether {@link encodeMsgpack} writes this number as an integer rather than a float. */
export function isIntegerNumber(value: number): boolean {
  return Number.isSafeInteger(value);
}

/** Bytes after the type code, per format. */
const WIDTHS: Record<IntFormat, number> = {
  fixint: 0,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
};

const INT_CODES: Record<Exclude<IntFormat, "fixint">, number> = {
  uint8: 0xcc,
  uint16: 0xcd,
  uint32: 0xce,
  uint64: 0xcf,
  int8: 0xd0,
  int16: 0xd1,
  int32: 0xd2,
  int64: 0xd3,
};

function write(out: number[], value: MsgpackValue, lengthWidth: 8 | 16 | 32 | "smallest"): void {
  if (value === null) out.push(0xc0);
  else if (value === true) out.push(0xc3);
  else if (value === false) out.push(0xc2);
  else if (typeof value === "number") {
    if (!isIntegerNumber(value)) writeFloat(out, value, "float64");
    else if (value >= 0 && value <= 0xffff_ffff) writeUint32(out, value);
    else writeInt(out, BigInt(value), smallestFormat(BigInt(value)));
  } else if (typeof value === "bigint") writeInt(out, value, smallestFormat(value));
  else if (typeof value === "string") {
    const bytes = new TextEncoder().encode(value);
    writeHeader(out, bytes.length, lengthWidth, { fix: [0xa0, 31], 8: 0xd9, 16: 0xda, 32: 0xdb });
    pushBytes(out, bytes);
  } else if (value instanceof Uint8Array) {
    writeHeader(out, value.length, lengthWidth, { 8: 0xc4, 16: 0xc5, 32: 0xc6 });
    pushBytes(out, value);
  } else if (value instanceof MsgpackMap) {
    writeHeader(out, value.entries.length, lengthWidth, { fix: [0x80, 15], 16: 0xde, 32: 0xdf });
    for (const [key, entry] of value.entries) {
      write(out, key, lengthWidth);
      write(out, entry, lengthWidth);
    }
  } else if (value instanceof MsgpackInt) writeInt(out, value.value, value.format);
  else if (value instanceof MsgpackFloat) writeFloat(out, value.value, value.format);
  else if (value instanceof MsgpackExt) writeExt(out, value);
  else {
    writeHeader(out, value.length, lengthWidth, { fix: [0x90, 15], 16: 0xdc, 32: 0xdd });
    for (const element of value) write(out, element, lengthWidth);
  }
}

/** The first of {@link intFormatsFor}, found without building the list (payloads hold many ints). */
function smallestFormat(value: bigint): IntFormat {
  const ladder: readonly IntFormat[] =
    value >= 0n ? ["fixint", "uint8", "uint16", "uint32", "uint64"] : SIGNED_LADDER;
  for (const format of ladder) {
    const [min, max] = RANGES[format];
    if (value >= min && value <= max) return format;
  }
  throw new RangeError(`${value} fits no msgpack integer`);
}

const SIGNED_LADDER: readonly IntFormat[] = ["fixint", "int8", "int16", "int32", "int64"];

function writeInt(out: number[], value: bigint, format: IntFormat): void {
  const [min, max] = RANGES[format];
  if (value < min || value > max) throw new RangeError(`${value} does not fit ${format}`);
  if (format === "fixint") {
    out.push(Number(BigInt.asUintN(8, value)));
    return;
  }
  out.push(INT_CODES[format]);
  const width = WIDTHS[format];
  const bits = BigInt.asUintN(width * 8, value);
  for (let i = width - 1; i >= 0; i--) out.push(Number((bits >> BigInt(i * 8)) & 0xffn));
}

/** {@link writeInt} in its smallest format for 0 <= value < 2^32, without BigInt (token ids). */
function writeUint32(out: number[], value: number): void {
  if (value <= 0x7f) out.push(value);
  else if (value <= 0xff) out.push(0xcc, value);
  else if (value <= 0xffff) out.push(0xcd, value >>> 8, value & 0xff);
  else out.push(0xce, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}

function writeFloat(out: number[], value: number, format: "float32" | "float64"): void {
  const bytes = new Uint8Array(format === "float32" ? 4 : 8);
  const view = new DataView(bytes.buffer);
  if (format === "float32") {
    out.push(0xca);
    view.setFloat32(0, value);
  } else {
    out.push(0xcb);
    view.setFloat64(0, value);
  }
  pushBytes(out, bytes);
}

function writeExt(out: number[], value: MsgpackExt): void {
  const fixCodes: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
  const fixCode = fixCodes[value.data.length];
  if (fixCode !== undefined) out.push(fixCode);
  else writeHeader(out, value.data.length, "smallest", { 8: 0xc7, 16: 0xc8, 32: 0xc9 });
  out.push(value.type & 0xff);
  pushBytes(out, value.data);
}

interface HeaderCodes {
  /** The fix form's base byte and largest length, for types that have one. */
  readonly fix?: readonly [number, number];
  /** Types without an 8-bit length form (arrays, maps) leave it out. */
  readonly 8?: number;
  readonly 16: number;
  readonly 32: number;
}

function writeHeader(
  out: number[],
  length: number,
  lengthWidth: 8 | 16 | 32 | "smallest",
  codes: HeaderCodes,
): void {
  const atLeast = lengthWidth === "smallest" ? 0 : lengthWidth;
  // Asked for 8 bits, types without an 8-bit form keep their fix form.
  const fixAllowed = atLeast === 0 || (atLeast === 8 && codes[8] === undefined);
  if (codes.fix !== undefined && fixAllowed && length <= codes.fix[1]) {
    out.push(codes.fix[0] | length);
  } else if (codes[8] !== undefined && length <= 0xff && atLeast <= 8) {
    out.push(codes[8], length);
  } else if (length <= 0xffff && atLeast <= 16) {
    out.push(codes[16], length >> 8, length & 0xff);
  } else {
    out.push(
      codes[32],
      (length >>> 24) & 0xff,
      (length >>> 16) & 0xff,
      (length >>> 8) & 0xff,
      length & 0xff,
    );
  }
}

function pushBytes(out: number[], bytes: Uint8Array): void {
  for (const byte of bytes) out.push(byte);
}
