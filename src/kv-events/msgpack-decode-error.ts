/**
 * Why a msgpack payload could not be read.
 *
 * - `truncated`: the input ends inside a value.
 * - `length-out-of-range`: a str, bin, ext, array or map declares more content than the bytes left
 *   could hold (checked before anything is allocated, so a 4-GB length prefix costs nothing).
 * - `too-deep`: a skipped value nests deeper than the reader's `maxDepth`.
 * - `type-mismatch`: the value is not of the type the caller asked for.
 * - `integer-out-of-range`: an integer asked for as a JS number is not a safe integer.
 * - `invalid-utf8`: a str asked for as a JS string is not well-formed UTF-8.
 * - `reserved-byte`: the byte 0xc1, which msgpack never uses.
 */
export type MsgpackDecodeErrorReason =
  | "truncated"
  | "length-out-of-range"
  | "too-deep"
  | "type-mismatch"
  | "integer-out-of-range"
  | "invalid-utf8"
  | "reserved-byte";

/**
 * The one error a {@link MsgpackReader} throws. `offset` is where the offending value starts in the
 * input; the message ends with it (`... at byte 12`).
 */
export class MsgpackDecodeError extends Error {
  override readonly name = "MsgpackDecodeError";
  readonly reason: MsgpackDecodeErrorReason;
  readonly offset: number;

  constructor(reason: MsgpackDecodeErrorReason, offset: number, message: string) {
    super(`${message} at byte ${offset}`);
    this.reason = reason;
    this.offset = offset;
  }
}
