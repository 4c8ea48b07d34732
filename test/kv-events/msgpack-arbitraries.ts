import fc from "fast-check";
import {
  intFormatsFor,
  type MsgpackEncodeOptions,
  MsgpackExt,
  MsgpackFloat,
  MsgpackInt,
  MsgpackMap,
  type MsgpackValue,
} from "../../bench/msgpack-encoder.js";

/** Every header width the test encoder can be asked for. */
export const anyLengthWidth: fc.Arbitrary<NonNullable<MsgpackEncodeOptions["lengthWidth"]>> =
  fc.constantFrom("smallest" as const, 8 as const, 16 as const, 32 as const);

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MIN = -(2n ** 63n);

/** An integer from int64's minimum to uint64's maximum, in any msgpack format that holds it. */
export const anyMsgpackInt: fc.Arbitrary<MsgpackInt> = fc
  .tuple(fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }), fc.nat())
  .map(([value, pick]) => inAnyFormat(value, pick));

/** `value` written in the format `pick` selects (modulo) among those that hold it. */
export function inAnyFormat(value: bigint, pick: number): MsgpackInt {
  const formats = intFormatsFor(value);
  return new MsgpackInt(value, formats[pick % formats.length] ?? "int64");
}

/**
 * Any msgpack value the test encoder writes: every scalar type (floats of both widths, ints of every
 * format, strings beyond ASCII, bytes, ext values) and nested arrays and maps (duplicate and
 * non-string keys included).
 */
export const anyMsgpackValue: fc.Arbitrary<MsgpackValue> = fc.letrec<{ value: MsgpackValue }>(
  (tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      anyMsgpackInt,
      fc.double().map((value) => new MsgpackFloat(value)),
      fc.float().map((value) => new MsgpackFloat(value, "float32")),
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }),
      fc
        .tuple(fc.integer({ min: -128, max: 127 }), fc.uint8Array({ maxLength: 20 }))
        .map(([type, data]) => new MsgpackExt(type, data)),
      fc.array(tie("value"), { maxLength: 5 }),
      fc
        .array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 })
        .map((entries) => new MsgpackMap(entries)),
    ),
  }),
).value;
