import { decodeUtf8 } from "./decode-utf8.js";
import { MsgpackDecodeError } from "./msgpack-decode-error.js";

/**
 * The kind of a msgpack value, from its first byte. `reserved` is the byte 0xc1, which no encoder
 * writes.
 */
export type MsgpackFormat =
  | "nil"
  | "bool"
  | "int"
  | "float"
  | "str"
  | "bin"
  | "array"
  | "map"
  | "ext"
  | "reserved";

/** Options of a {@link MsgpackReader}. */
export interface MsgpackReaderOptions {
  /**
   * How deep `skip()` follows arrays and maps nested inside the value it skips before giving up
   * with `too-deep`. The reader never recurses, so this bounds work on hostile input, not the stack.
   * @default 64
   */
  readonly maxDepth?: number;
}

const DEFAULT_MAX_DEPTH = 64;

/** How each format reads in an error message: "expected an integer, got a string". */
const FORMAT_NAMES: Readonly<Record<MsgpackFormat, string>> = {
  nil: "nil",
  bool: "a boolean",
  int: "an integer",
  float: "a float",
  str: "a string",
  bin: "bytes",
  array: "an array",
  map: "a map",
  ext: "an extension value",
  reserved: "the reserved byte 0xc1",
};

/**
 * A forward reader of msgpack values over one `Uint8Array`, for decoders that know the shape they
 * expect: peek a value's format, read it as the type wanted, or skip it whole.
 *
 * Every method either consumes exactly one value or throws a {@link MsgpackDecodeError} and nothing
 * else: every read is bounds-checked first, and every declared length is checked against the bytes
 * left before it is used (an array needs at least one byte per element, a map two per entry), so
 * input of n bytes costs O(n) whatever it claims. Reading allocates only what it returns (copied
 * bytes, decoded strings); nothing returned aliases the input. Not safe for concurrent use; make one
 * per payload.
 */
export class MsgpackReader {
  readonly #bytes: Uint8Array;
  readonly #maxDepth: number;
  /** Where the next value starts; never past `#bytes.length`. */
  #offset = 0;
  /**
   * `skip()`'s work list: at depth d, how many values of the container open at that depth are left.
   * Allocated on the first nested skip and reused; a plain array, as typed arrays cost far more to
   * create than a short decode takes.
   */
  #pending: number[] | undefined;

  constructor(bytes: Uint8Array, options: MsgpackReaderOptions = {}) {
    // No DataView or view of our own: creating typed-array views costs more than decoding a
    // small batch, so integers are assembled from bytes and floats go through FLOAT_SCRATCH.
    this.#bytes = bytes;
    this.#maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  /** Where the next value starts, in bytes from the start of the input. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  /**
   * Goes back to an offset this reader has already passed (a value's start it remembered), to read
   * it again. Throws a RangeError for any other offset: that is a bug in the caller, not bad input.
   */
  rewind(offset: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset > this.#offset) {
      throw new RangeError(`cannot rewind to ${offset} from ${this.#offset}`);
    }
    this.#offset = offset;
  }

  /** The format of the next value, without consuming it. Throws `truncated` at the end of input. */
  peekFormat(): MsgpackFormat {
    return formatOf(this.#peekByte());
  }

  /**
   * Throws the `type-mismatch` error for the next value, saying what was expected instead
   * (`expected an integer or bytes, got a string`). For callers that peeked and found no use for it.
   */
  fail(expected: string): never {
    const got = FORMAT_NAMES[this.peekFormat()];
    throw new MsgpackDecodeError("type-mismatch", this.#offset, `expected ${expected}, got ${got}`);
  }

  /** Consumes the next value and returns true if it is nil; otherwise consumes nothing. */
  tryReadNil(): boolean {
    if (this.#peekByte() !== 0xc0) return false;
    this.#offset += 1;
    return true;
  }

  /** Reads a boolean. */
  readBoolean(): boolean {
    const byte = this.#peekByte();
    if (byte !== 0xc2 && byte !== 0xc3) this.fail("a boolean");
    this.#offset += 1;
    return byte === 0xc3;
  }

  /**
   * Reads an integer of any width as a JS number. Throws `integer-out-of-range` for a 64-bit value
   * beyond ±(2^53 - 1); read those with {@link readInteger64Bytes}.
   */
  readInteger(): number {
    const start = this.#offset;
    const byte = this.#peekByte();
    if (byte <= 0x7f) {
      this.#offset += 1;
      return byte;
    }
    if (byte >= 0xe0) {
      this.#offset += 1;
      return byte - 0x100;
    }
    const at = start + 1;
    let value: number;
    switch (byte) {
      case 0xcc:
        this.#need(2);
        value = this.#uint(at, 1);
        break;
      case 0xcd:
        this.#need(3);
        value = this.#uint(at, 2);
        break;
      case 0xce:
        this.#need(5);
        value = this.#uint(at, 4);
        break;
      case 0xcf:
        this.#need(9);
        // Exact whenever the result is a safe integer; otherwise the check below rejects it.
        value = this.#uint(at, 4) * 0x1_0000_0000 + this.#uint(at + 4, 4);
        break;
      case 0xd0:
        this.#need(2);
        value = (this.#uint(at, 1) << 24) >> 24;
        break;
      case 0xd1:
        this.#need(3);
        value = (this.#uint(at, 2) << 16) >> 16;
        break;
      case 0xd2:
        this.#need(5);
        value = this.#uint(at, 4) | 0;
        break;
      case 0xd3:
        this.#need(9);
        value = (this.#uint(at, 4) | 0) * 0x1_0000_0000 + this.#uint(at + 4, 4);
        break;
      default:
        return this.fail("an integer");
    }
    if (!Number.isSafeInteger(value)) {
      throw new MsgpackDecodeError(
        "integer-out-of-range",
        start,
        "integer does not fit a JS number exactly",
      );
    }
    this.#offset = start + (INT_WIDTHS[byte - 0xcc] as number) + 1;
    return value;
  }

  /**
   * Reads an integer of any width as its 64-bit two's complement, 8 bytes big-endian, in a new
   * array: uint64 0xffffffffffffffff and int64 -1 give the same bytes, and 7 written as a fixint or
   * as a uint64 give the same bytes too. Never loses precision and never uses BigInt.
   */
  readInteger64Bytes(): Uint8Array {
    const start = this.#offset;
    const byte = this.#peekByte();
    if (byte <= 0x7f || byte >= 0xe0) {
      const out = new Uint8Array(8);
      if (byte >= 0xe0) out.fill(0xff, 0, 7);
      out[7] = byte;
      this.#offset += 1;
      return out;
    }
    if (byte < 0xcc || byte > 0xd3) this.fail("an integer");
    const width = INT_WIDTHS[byte - 0xcc] as number;
    this.#need(width + 1);
    const out = new Uint8Array(8);
    const bytes = this.#bytes;
    const first = start + 1;
    // Signed formats (0xd0-0xd3) extend their sign bit over the bytes they do not carry.
    if (byte >= 0xd0 && ((bytes[first] as number) & 0x80) !== 0) out.fill(0xff, 0, 8 - width);
    for (let i = 0; i < width; i++) out[8 - width + i] = bytes[first + i] as number;
    this.#offset = first + width;
    return out;
  }

  /** Reads an integer or a float (float32 widened) as a JS number; integers as {@link readInteger}. */
  readNumber(): number {
    const start = this.#offset;
    const byte = this.#peekByte();
    if (byte === 0xca || byte === 0xcb) {
      const width = byte === 0xca ? 4 : 8;
      this.#need(width + 1);
      const bytes = this.#bytes;
      for (let i = 0; i < width; i++) FLOAT_BYTES[i] = bytes[start + 1 + i] as number;
      this.#offset = start + 1 + width;
      return width === 4 ? FLOAT_SCRATCH.getFloat32(0) : FLOAT_SCRATCH.getFloat64(0);
    }
    if (formatOf(byte) !== "int") this.fail("a number");
    return this.readInteger();
  }

  /** Reads bin8/16/32 content into a new array (a copy: the input may be reused after decoding). */
  readBinary(): Uint8Array {
    const byte = this.#peekByte();
    let length: number;
    if (byte === 0xc4) length = this.#readLength(1);
    else if (byte === 0xc5) length = this.#readLength(2);
    else if (byte === 0xc6) length = this.#readLength(4);
    else return this.fail("bytes");
    const content = this.#offset;
    this.#offset = content + length;
    // Copied by hand: a Node Buffer's slice() would share memory instead.
    const out = new Uint8Array(length);
    const bytes = this.#bytes;
    for (let i = 0; i < length; i++) out[i] = bytes[content + i] as number;
    return out;
  }

  /** Reads a str as a JS string. Throws `invalid-utf8` for malformed UTF-8. */
  readString(): string {
    const length = this.#readStringLength();
    const start = this.#offset;
    const value = decodeUtf8(this.#bytes, start, start + length);
    if (value === undefined) {
      throw new MsgpackDecodeError("invalid-utf8", start, "string is not valid UTF-8");
    }
    this.#offset = start + length;
    return value;
  }

  /**
   * Reads a str and returns the index of the candidate with exactly its bytes, or -1 when none has.
   * Compares bytes, so matching a key or a tag allocates nothing; candidates are the UTF-8 encodings
   * of the names sought.
   */
  readStringMatch(candidates: readonly Uint8Array[]): number {
    const length = this.#readStringLength();
    const start = this.#offset;
    this.#offset = start + length;
    const bytes = this.#bytes;
    for (let c = 0; c < candidates.length; c++) {
      const candidate = candidates[c] as Uint8Array;
      if (candidate.length !== length) continue;
      let i = 0;
      while (i < length && bytes[start + i] === candidate[i]) i++;
      if (i === length) return c;
    }
    return -1;
  }

  /** Reads an array header and returns its element count; the elements follow. */
  readArrayLength(): number {
    const start = this.#offset;
    const byte = this.#peekByte();
    let count: number;
    if (byte >= 0x90 && byte <= 0x9f) {
      count = byte & 0x0f;
      this.#offset += 1;
    } else if (byte === 0xdc) count = this.#readCount(2);
    else if (byte === 0xdd) count = this.#readCount(4);
    else return this.fail("an array");
    this.#checkContent(count, "elements", start);
    return count;
  }

  /** Reads a map header and returns its entry count; the entries follow, key then value. */
  readMapLength(): number {
    const start = this.#offset;
    const byte = this.#peekByte();
    let count: number;
    if (byte >= 0x80 && byte <= 0x8f) {
      count = byte & 0x0f;
      this.#offset += 1;
    } else if (byte === 0xde) count = this.#readCount(2);
    else if (byte === 0xdf) count = this.#readCount(4);
    else return this.fail("a map");
    this.#checkContent(count * 2, "keys and values", start);
    return count;
  }

  /**
   * Consumes the next value whole, whatever it is (ext values included), without decoding it.
   * Iterative: O(bytes skipped), no recursion, at most `maxDepth` levels of nesting.
   */
  skip(): void {
    let depth = 0;
    let pending = this.#pending;
    // At depth 0, the one value asked for; deeper, what is left of each open container.
    let left = 1;
    while (true) {
      if (left === 0) {
        if (depth === 0) return;
        depth -= 1;
        left = (pending as number[])[depth] as number;
        continue;
      }
      left -= 1;
      const count = this.#skipOne();
      if (count > 0) {
        if (depth === this.#maxDepth) {
          throw new MsgpackDecodeError(
            "too-deep",
            this.#offset,
            `nesting deeper than ${this.#maxDepth} levels`,
          );
        }
        if (pending === undefined) {
          pending = [];
          this.#pending = pending;
        }
        pending[depth] = left;
        depth += 1;
        left = count;
      }
    }
  }

  /**
   * Consumes one value's own bytes: a scalar whole, a container's header only. Returns how many
   * values the container holds (a map's keys and values both count), 0 for anything else.
   */
  #skipOne(): number {
    const byte = this.#peekByte();
    if (byte <= 0x7f || byte >= 0xe0 || byte === 0xc0 || byte === 0xc2 || byte === 0xc3) {
      this.#offset += 1;
      return 0;
    }
    if (byte <= 0x8f) return this.readMapLength() * 2;
    if (byte <= 0x9f) return this.readArrayLength();
    const start = this.#offset;
    if (byte <= 0xbf) {
      this.#offset += 1;
      this.#skipContent(byte & 0x1f, start);
      return 0;
    }
    switch (byte) {
      case 0xc1:
        throw new MsgpackDecodeError("reserved-byte", this.#offset, "reserved byte 0xc1");
      case 0xc4:
      case 0xd9:
        this.#skipContent(this.#readCount(1), start);
        return 0;
      case 0xc5:
      case 0xda:
        this.#skipContent(this.#readCount(2), start);
        return 0;
      case 0xc6:
      case 0xdb:
        this.#skipContent(this.#readCount(4), start);
        return 0;
      // ext 8/16/32: length, then a type byte, then the content.
      case 0xc7:
        this.#skipContent(this.#readCount(1) + 1, start);
        return 0;
      case 0xc8:
        this.#skipContent(this.#readCount(2) + 1, start);
        return 0;
      case 0xc9:
        this.#skipContent(this.#readCount(4) + 1, start);
        return 0;
      case 0xca:
        this.#skipFixed(5);
        return 0;
      case 0xcb:
        this.#skipFixed(9);
        return 0;
      // fixext 1/2/4/8/16: a type byte, then the content.
      case 0xd4:
        this.#skipFixed(3);
        return 0;
      case 0xd5:
        this.#skipFixed(4);
        return 0;
      case 0xd6:
        this.#skipFixed(6);
        return 0;
      case 0xd7:
        this.#skipFixed(10);
        return 0;
      case 0xd8:
        this.#skipFixed(18);
        return 0;
      case 0xdc:
      case 0xdd:
        return this.readArrayLength();
      case 0xde:
      case 0xdf:
        return this.readMapLength() * 2;
      default:
        // 0xcc-0xd3: integers.
        this.#skipFixed((INT_WIDTHS[byte - 0xcc] as number) + 1);
        return 0;
    }
  }

  #peekByte(): number {
    const byte = this.#bytes[this.#offset];
    if (byte === undefined) {
      throw new MsgpackDecodeError(
        "truncated",
        this.#offset,
        "input ends where a value should start",
      );
    }
    return byte;
  }

  /** Throws `truncated` unless `count` bytes are left from the current offset. */
  #need(count: number): void {
    const left = this.#bytes.length - this.#offset;
    if (left < count) {
      throw new MsgpackDecodeError(
        "truncated",
        this.#offset,
        `input ends inside a value (needs ${count} bytes, ${left} left)`,
      );
    }
  }

  #skipFixed(count: number): void {
    this.#need(count);
    this.#offset += count;
  }

  /** Reads the big-endian count of `width` bytes that follows a format byte; leaves the offset after it. */
  #readCount(width: 1 | 2 | 4): number {
    this.#need(width + 1);
    const at = this.#offset + 1;
    const count = this.#uint(at, width);
    this.#offset = at + width;
    return count;
  }

  /** The unsigned big-endian integer of `width` (1 to 4) bytes at `at`; the caller checked bounds. */
  #uint(at: number, width: 1 | 2 | 4): number {
    const bytes = this.#bytes;
    const b0 = bytes[at] as number;
    if (width === 1) return b0;
    const b1 = bytes[at + 1] as number;
    if (width === 2) return (b0 << 8) | b1;
    const low = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    return ((b0 << 24) | (b1 << 16) | low) >>> 0;
  }

  /** Reads a str/bin header's length of `width` bytes and checks the content fits what is left. */
  #readLength(width: 1 | 2 | 4): number {
    const start = this.#offset;
    const length = this.#readCount(width);
    this.#checkContent(length, "bytes", start);
    return length;
  }

  #readStringLength(): number {
    const byte = this.#peekByte();
    if (byte >= 0xa0 && byte <= 0xbf) {
      const start = this.#offset;
      this.#offset += 1;
      const length = byte & 0x1f;
      this.#checkContent(length, "bytes", start);
      return length;
    }
    if (byte === 0xd9) return this.#readLength(1);
    if (byte === 0xda) return this.#readLength(2);
    if (byte === 0xdb) return this.#readLength(4);
    return this.fail("a string");
  }

  /**
   * Throws `length-out-of-range` unless `count` units, each at least a byte, fit in the bytes left
   * after the header just read. `start` is where that header began, for the message.
   */
  #checkContent(count: number, unit: string, start: number): void {
    const left = this.#bytes.length - this.#offset;
    if (count > left) {
      throw new MsgpackDecodeError(
        "length-out-of-range",
        start,
        `declares ${count} ${unit} but only ${left} bytes are left`,
      );
    }
  }

  #skipContent(length: number, start: number): void {
    this.#checkContent(length, "bytes", start);
    this.#offset += length;
  }
}

/**
 * Where floats are assembled: shared by every reader, which is safe because a read never yields
 * between filling and reading it.
 */
const FLOAT_SCRATCH = new DataView(new ArrayBuffer(8));
const FLOAT_BYTES = new Uint8Array(FLOAT_SCRATCH.buffer);

/** Bytes after the format byte of 0xcc uint8 ... 0xcf uint64, 0xd0 int8 ... 0xd3 int64. */
const INT_WIDTHS: readonly number[] = [1, 2, 4, 8, 1, 2, 4, 8];

function formatOf(byte: number): MsgpackFormat {
  if (byte <= 0x7f || byte >= 0xe0) return "int";
  if (byte <= 0x8f) return "map";
  if (byte <= 0x9f) return "array";
  if (byte <= 0xbf) return "str";
  switch (byte) {
    case 0xc0:
      return "nil";
    case 0xc1:
      return "reserved";
    case 0xc2:
    case 0xc3:
      return "bool";
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return "bin";
    case 0xca:
    case 0xcb:
      return "float";
    case 0xd9:
    case 0xda:
    case 0xdb:
      return "str";
    case 0xdc:
    case 0xdd:
      return "array";
    case 0xde:
    case 0xdf:
      return "map";
    default:
      if (byte >= 0xcc && byte <= 0xd3) return "int";
      // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext.
      return "ext";
  }
}
