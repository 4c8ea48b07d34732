import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  encodeMsgpack,
  isIntegerNumber,
  MsgpackExt,
  MsgpackFloat,
  MsgpackInt,
  MsgpackMap,
  type MsgpackValue,
} from "../../bench/msgpack-encoder.js";
import { MsgpackDecodeError } from "../../src/kv-events/msgpack-decode-error.js";
import { MsgpackReader } from "../../src/kv-events/msgpack-reader.js";
import { anyLengthWidth, anyMsgpackValue } from "./msgpack-arbitraries.js";

/** Bytes from hex, spaces allowed: `bytes("cd 01 00")`. */
function bytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.replace(/\s/g, ""), "hex"));
}

function hexOf(data: Uint8Array): string {
  return Buffer.from(data).toString("hex");
}

/** A value as the test reads it back: integers as their 64-bit pattern, maps as entry lists. */
type ReadValue =
  | null
  | boolean
  | bigint
  | number
  | string
  | Uint8Array
  | "ext"
  | ReadValue[]
  | { readonly map: [ReadValue, ReadValue][] };

/** Reads any value with the reader's typed methods, the way a decoder would. */
function readValue(reader: MsgpackReader): ReadValue {
  switch (reader.peekFormat()) {
    case "nil":
      expect(reader.tryReadNil()).toBe(true);
      return null;
    case "bool":
      return reader.readBoolean();
    case "int":
      return new DataView(reader.readInteger64Bytes().buffer).getBigUint64(0);
    case "float":
      return reader.readNumber();
    case "str":
      return reader.readString();
    case "bin":
      return reader.readBinary();
    case "array":
      return Array.from({ length: reader.readArrayLength() }, () => readValue(reader));
    case "map": {
      const length = reader.readMapLength();
      const map: [ReadValue, ReadValue][] = [];
      for (let i = 0; i < length; i++) map.push([readValue(reader), readValue(reader)]);
      return { map };
    }
    case "ext":
      reader.skip();
      return "ext";
    case "reserved":
      reader.skip(); // throws reserved-byte
      throw new Error("unreachable: skip() accepted 0xc1");
  }
}

/** What {@link readValue} gives for an encoded value. */
function expectedRead(value: MsgpackValue): ReadValue {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    return isIntegerNumber(value) ? BigInt.asUintN(64, BigInt(value)) : value;
  }
  if (typeof value === "bigint") return BigInt.asUintN(64, value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof MsgpackInt) return BigInt.asUintN(64, value.value);
  if (value instanceof MsgpackFloat) {
    return value.format === "float32" ? Math.fround(value.value) : value.value;
  }
  if (value instanceof MsgpackExt) return "ext";
  if (value instanceof MsgpackMap) {
    return { map: value.entries.map(([k, v]) => [expectedRead(k), expectedRead(v)]) };
  }
  return value.map(expectedRead);
}

function decodeError(read: () => unknown): MsgpackDecodeError {
  try {
    read();
  } catch (error) {
    if (error instanceof MsgpackDecodeError) return error;
    throw error;
  }
  throw new Error("expected a MsgpackDecodeError, but the read succeeded");
}

describe("MsgpackReader", () => {
  describe("reads every format", () => {
    it.each([
      ["positive fixint", "00", 0],
      ["positive fixint", "7f", 127],
      ["negative fixint", "e0", -32],
      ["negative fixint", "ff", -1],
      ["uint8", "cc ff", 255],
      ["uint16", "cd 01 00", 256],
      ["uint32", "ce ff ff ff ff", 0xffff_ffff],
      ["uint64", "cf 00 1f ff ff ff ff ff ff", Number.MAX_SAFE_INTEGER],
      ["int8", "d0 80", -128],
      ["int16", "d1 80 00", -32768],
      ["int32", "d2 80 00 00 00", -(2 ** 31)],
      ["int64", "d3 ff e0 00 00 00 00 00 01", Number.MIN_SAFE_INTEGER],
    ])("%s %s as the integer %d", (_format, hex, value) => {
      const reader = new MsgpackReader(bytes(hex));
      expect(reader.peekFormat()).toBe("int");
      expect(reader.readInteger()).toBe(value);
      expect(reader.remaining).toBe(0);
    });

    it.each([
      ["positive fixint", "07", "0000000000000007"],
      ["negative fixint", "ff", "ffffffffffffffff"],
      ["uint8", "cc 07", "0000000000000007"],
      ["uint16", "cd 00 07", "0000000000000007"],
      ["uint32", "ce 00 00 00 07", "0000000000000007"],
      ["uint64", "cf ff ff ff ff ff ff ff ff", "ffffffffffffffff"],
      ["int8", "d0 fe", "fffffffffffffffe"],
      ["int8", "d0 7e", "000000000000007e"],
      ["int16", "d1 80 00", "ffffffffffff8000"],
      ["int32", "d2 ff ff ff fe", "fffffffffffffffe"],
      ["int64", "d3 cf 97 ad ee db 59 e0 5b", "cf97adeedb59e05b"],
    ])("%s %s as the 64-bit pattern %s", (_format, hex, expected) => {
      const reader = new MsgpackReader(bytes(hex));
      expect(hexOf(reader.readInteger64Bytes())).toBe(expected);
      expect(reader.remaining).toBe(0);
    });

    it.each([
      ["float32", "ca 3f c0 00 00", 1.5],
      ["float64", "cb 41 da 47 fb 48 10 00 00", 1763700000.25],
      ["an integer", "cd 01 00", 256],
    ])("%s %s as the number %d", (_format, hex, value) => {
      const reader = new MsgpackReader(bytes(hex));
      expect(reader.readNumber()).toBe(value);
      expect(reader.remaining).toBe(0);
    });

    it.each([
      ["fixstr", "a3 47 50 55", "GPU"],
      ["fixstr, empty", "a0", ""],
      ["str8", "d9 03 43 50 55", "CPU"],
      ["str16", "da 00 02 c3 a9", "é"],
      ["str32", "db 00 00 00 04 f0 9f 98 80", "😀"],
    ])("%s %s as the string %j", (_format, hex, value) => {
      const reader = new MsgpackReader(bytes(hex));
      expect(reader.peekFormat()).toBe("str");
      expect(reader.readString()).toBe(value);
      expect(reader.remaining).toBe(0);
    });

    it.each([
      ["bin8", "c4 02 ab cd", "abcd"],
      ["bin8, empty", "c4 00", ""],
      ["bin16", "c5 00 01 ff", "ff"],
      ["bin32", "c6 00 00 00 03 01 02 03", "010203"],
    ])("%s %s as the bytes %s", (_format, hex, value) => {
      const reader = new MsgpackReader(bytes(hex));
      expect(reader.peekFormat()).toBe("bin");
      expect(hexOf(reader.readBinary())).toBe(value);
      expect(reader.remaining).toBe(0);
    });

    it.each([
      ["fixarray", "92 01 02", "array", 2],
      ["array16", "dc 00 02 01 02", "array", 2],
      ["array32", "dd 00 00 00 02 01 02", "array", 2],
      ["fixmap", "81 01 02", "map", 1],
      ["map16", "de 00 01 01 02", "map", 1],
      ["map32", "df 00 00 00 01 01 02", "map", 1],
    ])("%s %s as a container of %s", (_format, hex, kind, count) => {
      const reader = new MsgpackReader(bytes(hex));
      expect(reader.peekFormat()).toBe(kind);
      expect(kind === "array" ? reader.readArrayLength() : reader.readMapLength()).toBe(count);
      expect(reader.readInteger()).toBe(1);
      expect(reader.readInteger()).toBe(2);
    });

    it("reads nil and booleans", () => {
      const reader = new MsgpackReader(bytes("c0 c2 c3 01"));
      expect(reader.peekFormat()).toBe("nil");
      expect(reader.tryReadNil()).toBe(true);
      expect(reader.readBoolean()).toBe(false);
      expect(reader.readBoolean()).toBe(true);
      expect(reader.tryReadNil()).toBe(false);
      expect(reader.offset).toBe(3);
    });

    it("matches a string against candidates by its bytes", () => {
      const candidates = [bytes("61 62"), bytes("61 62 63")];
      const reader = new MsgpackReader(bytes("a3 61 62 63 a2 61 62 a2 61 78 d9 02 61 62"));
      expect(reader.readStringMatch(candidates)).toBe(1);
      expect(reader.readStringMatch(candidates)).toBe(0);
      expect(reader.readStringMatch(candidates)).toBe(-1);
      expect(reader.readStringMatch(candidates)).toBe(0);
      expect(reader.remaining).toBe(0);
    });

    it("copies bytes, so what it returns outlives a reused input buffer", () => {
      const input = bytes("c4 02 ab cd cf 01 02 03 04 05 06 07 08");
      const reader = new MsgpackReader(input);
      const bin = reader.readBinary();
      const int = reader.readInteger64Bytes();
      input.fill(0);
      expect(hexOf(bin)).toBe("abcd");
      expect(hexOf(int)).toBe("0102030405060708");
    });

    it("reads a value inside a larger buffer at its own offsets", () => {
      const buffer = bytes("ff ff 92 cd 01 00 a1 78 ff");
      const reader = new MsgpackReader(buffer.subarray(2, 8));
      expect(reader.readArrayLength()).toBe(2);
      expect(reader.readInteger()).toBe(256);
      expect(reader.readString()).toBe("x");
      expect(reader.remaining).toBe(0);
    });

    it("rewinds to an offset it has passed, and refuses one it has not", () => {
      const reader = new MsgpackReader(bytes("01 02"));
      reader.readInteger();
      reader.rewind(0);
      expect(reader.readInteger()).toBe(1);
      expect(() => reader.rewind(2)).toThrow(RangeError);
    });
  });

  describe("skip()", () => {
    it.each([
      ["nil", "c0"],
      ["true", "c3"],
      ["fixint", "05"],
      ["negative fixint", "f0"],
      ["uint64", "cf 00 00 00 00 00 00 00 01"],
      ["int16", "d1 00 01"],
      ["float32", "ca 00 00 00 00"],
      ["float64", "cb 00 00 00 00 00 00 00 00"],
      ["fixstr", "a2 68 69"],
      ["str8", "d9 01 68"],
      ["str16", "da 00 01 68"],
      ["str32", "db 00 00 00 01 68"],
      ["bin8", "c4 01 00"],
      ["bin16", "c5 00 01 00"],
      ["bin32", "c6 00 00 00 01 00"],
      ["fixext 1", "d4 01 00"],
      ["fixext 2", "d5 01 00 00"],
      ["fixext 4", "d6 ff 00 00 00 00"],
      ["fixext 8", "d7 01 00 00 00 00 00 00 00 00"],
      ["fixext 16", `d8 01 ${"00 ".repeat(16)}`],
      ["ext8", "c7 02 05 00 00"],
      ["ext16", "c8 00 02 05 00 00"],
      ["ext32", "c9 00 00 00 02 05 00 00"],
      ["nested containers", "92 81 a1 6b 93 01 c0 90 80"],
      ["array16", "dc 00 02 c0 c0"],
      ["array32", "dd 00 00 00 01 c0"],
      ["map16", "de 00 01 c0 c0"],
      ["map32", "df 00 00 00 01 c0 c0"],
    ])("skips %s (%s) whole", (_format, hex) => {
      const reader = new MsgpackReader(bytes(`${hex} 2a`));
      reader.skip();
      expect(reader.readInteger()).toBe(42);
    });

    it("skips exactly one encoded value, whatever it is", () => {
      fc.assert(
        fc.property(anyMsgpackValue, anyLengthWidth, (value, width) => {
          const encoded = encodeMsgpack(value, { lengthWidth: width });
          const reader = new MsgpackReader(Uint8Array.of(...encoded, 0x2a));
          reader.skip();
          expect(reader.offset).toBe(encoded.length);
        }),
        { numRuns: 300 },
      );
    });

    it("follows nesting down to maxDepth and no further", () => {
      const nested = (depth: number) => bytes(`${"91 ".repeat(depth)}c0`);
      new MsgpackReader(nested(64)).skip();
      const error = decodeError(() => new MsgpackReader(nested(65)).skip());
      expect(error.reason).toBe("too-deep");
      expect(decodeError(() => new MsgpackReader(nested(3), { maxDepth: 2 }).skip()).reason).toBe(
        "too-deep",
      );
    });

    it("walks a deep, wide value without recursion", () => {
      const reader = new MsgpackReader(bytes(`${"91 ".repeat(10_000)}c0`), { maxDepth: 20_000 });
      reader.skip();
      expect(reader.remaining).toBe(0);
    });
  });

  it("reads back every value the test encoder writes, in every header width", () => {
    fc.assert(
      fc.property(anyMsgpackValue, anyLengthWidth, (value, width) => {
        const reader = new MsgpackReader(encodeMsgpack(value, { lengthWidth: width }));
        expect(readValue(reader)).toEqual(expectedRead(value));
        expect(reader.remaining).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  describe("rejects bad input with a typed error", () => {
    it.each([
      ["empty input", "", "truncated", "input ends where a value should start at byte 0"],
      ["a uint16 cut short", "cd 01", "truncated", "needs 3 bytes, 2 left"],
      ["a uint64 cut short", "cf 00 00 00 00 00 00 00", "truncated", "needs 9 bytes, 8 left"],
      ["a float64 cut short", "cb 00 00", "truncated", "needs 9 bytes, 3 left"],
      ["a str16 header cut short", "da 00", "truncated", "needs 3 bytes, 2 left"],
      ["a fixstr cut short", "a3 47 50", "length-out-of-range", "declares 3 bytes"],
      [
        "a 4-GB str32 in 10 bytes",
        "db ff ff ff ff 00 00 00 00 00",
        "length-out-of-range",
        "declares 4294967295 bytes but only 5 bytes are left at byte 0",
      ],
      ["a 4-GB bin32", "c6 ff ff ff ff 00", "length-out-of-range", "declares 4294967295 bytes"],
      [
        "an array32 of 4 G elements",
        "dd ff ff ff ff 00",
        "length-out-of-range",
        "declares 4294967295 elements",
      ],
      [
        "a map16 whose entries cannot fit",
        "de 00 02 01 02 03",
        "length-out-of-range",
        "declares 4 keys and values but only 3 bytes are left",
      ],
      ["an ext32 of 4 GB", "c9 ff ff ff ff 01", "length-out-of-range", "declares 4294967296 bytes"],
      ["a fixext16 cut short", "d8 01 00", "truncated", "needs 18 bytes, 3 left"],
      ["the reserved byte", "c1", "reserved-byte", "reserved byte 0xc1 at byte 0"],
    ])("%s (%s): skip() throws %s", (_case, hex, reason, message) => {
      const error = decodeError(() => new MsgpackReader(bytes(hex)).skip());
      expect(error.reason).toBe(reason);
      expect(error.message).toContain(message);
    });

    it.each([
      ["a str32 of 4 GB", "db ff ff ff ff 00", (r: MsgpackReader) => r.readString()],
      ["a bin32 of 4 GB", "c6 ff ff ff ff 00", (r: MsgpackReader) => r.readBinary()],
      ["an array32 of 4 G", "dd ff ff ff ff 00", (r: MsgpackReader) => r.readArrayLength()],
      ["a map32 of 4 G", "df ff ff ff ff 00", (r: MsgpackReader) => r.readMapLength()],
      ["a map of 2 in 3 bytes", "82 01 02 03", (r: MsgpackReader) => r.readMapLength()],
      [
        "a str32 of 4 GB as a key",
        "db ff ff ff ff 00",
        (r: MsgpackReader) => r.readStringMatch([]),
      ],
    ])("%s (%s): reading it throws length-out-of-range", (_case, hex, read) => {
      expect(decodeError(() => read(new MsgpackReader(bytes(hex)))).reason).toBe(
        "length-out-of-range",
      );
    });

    it.each([
      ["cf 00 20 00 00 00 00 00 00", "2^53 as a uint64"],
      ["cf ff ff ff ff ff ff ff ff", "2^64 - 1"],
      ["d3 ff e0 00 00 00 00 00 00", "-(2^53) as an int64"],
      ["d3 80 00 00 00 00 00 00 00", "-(2^63)"],
    ])("%s (%s): readInteger() throws integer-out-of-range", (hex) => {
      const error = decodeError(() => new MsgpackReader(bytes(hex)).readInteger());
      expect(error.reason).toBe("integer-out-of-range");
    });

    it.each([
      ["a2 c3 28", "a bad continuation byte"],
      ["a2 c0 80", "an overlong form"],
      ["a3 ed a0 80", "a surrogate"],
      ["a4 f4 90 80 80", "a code point past U+10FFFF"],
      ["a1 c3", "a sequence cut short"],
      ["a1 80", "a lone continuation byte"],
    ])("%s (%s): readString() throws invalid-utf8", (hex) => {
      expect(decodeError(() => new MsgpackReader(bytes(hex)).readString()).reason).toBe(
        "invalid-utf8",
      );
    });

    it.each([
      [
        "readInteger",
        "a1 78",
        (r: MsgpackReader) => r.readInteger(),
        "expected an integer, got a string",
      ],
      [
        "readInteger64Bytes",
        "ca 00 00 00 00",
        (r: MsgpackReader) => r.readInteger64Bytes(),
        "expected an integer, got a float",
      ],
      ["readNumber", "c0", (r: MsgpackReader) => r.readNumber(), "expected a number, got nil"],
      ["readString", "c4 00", (r: MsgpackReader) => r.readString(), "expected a string, got bytes"],
      ["readBinary", "a0", (r: MsgpackReader) => r.readBinary(), "expected bytes, got a string"],
      [
        "readBoolean",
        "01",
        (r: MsgpackReader) => r.readBoolean(),
        "expected a boolean, got an integer",
      ],
      [
        "readArrayLength",
        "80",
        (r: MsgpackReader) => r.readArrayLength(),
        "expected an array, got a map",
      ],
      [
        "readMapLength",
        "90",
        (r: MsgpackReader) => r.readMapLength(),
        "expected a map, got an array",
      ],
      [
        "readMapLength",
        "d4 01 00",
        (r: MsgpackReader) => r.readMapLength(),
        "expected a map, got an extension value",
      ],
      [
        "readInteger",
        "c1",
        (r: MsgpackReader) => r.readInteger(),
        "expected an integer, got the reserved byte 0xc1",
      ],
    ])("%s on %s throws type-mismatch", (_method, hex, read, message) => {
      const reader = new MsgpackReader(bytes(hex));
      const error = decodeError(() => read(reader));
      expect(error.reason).toBe("type-mismatch");
      expect(error.message).toBe(`${message} at byte 0`);
      expect(reader.offset).toBe(0);
    });

    it("throws nothing but a MsgpackDecodeError on arbitrary bytes, whatever is read", () => {
      const reads = [
        (r: MsgpackReader) => r.skip(),
        (r: MsgpackReader) => readValue(r),
        (r: MsgpackReader) => r.readInteger(),
        (r: MsgpackReader) => r.readString(),
        (r: MsgpackReader) => r.readArrayLength(),
      ];
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 64, size: "max" }),
          fc.nat(reads.length - 1),
          (input, which) => {
            const reader = new MsgpackReader(input);
            try {
              (reads[which] as (r: MsgpackReader) => unknown)(reader);
            } catch (error) {
              expect(error).toBeInstanceOf(MsgpackDecodeError);
            }
            expect(reader.offset).toBeLessThanOrEqual(input.length);
          },
        ),
        { numRuns: 2000 },
      );
    });
  });
});
