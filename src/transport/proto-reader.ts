/**
 * Protobuf wire types (the low three bits of a tag).
 * https://protobuf.dev/programming-guides/encoding/#structure
 */
export const WireType = {
  Varint: 0,
  Bit64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Bit32: 5,
} as const;

/**
 * Thrown by {@link ProtoReader} for bytes that are not valid protobuf. Its message names the
 * problem ("tenant is not valid UTF-8", "prefix_hashes[3] runs past the end of the message").
 */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

/**
 * How deep unknown groups may nest inside a top-level message before reading fails: protobuf-es's
 * default recursion limit (100) less the one level the message itself uses.
 */
export const MAX_GROUP_DEPTH = 99;

/** Strings up to this many bytes are built in JavaScript when ASCII; longer ones by TextDecoder. */
const SHORT_STRING_BYTES = 32;

/** protobuf-es's own decoder for strings: invalid UTF-8 throws, a leading BOM is dropped. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A cursor over the bytes of one protobuf message, for hand-written decoders of hot messages. It
 * reads exactly as protobuf-es's `BinaryReader` does (varints of up to 10 bytes, tags that fit in
 * 32 bits with a field number of at least 1 and a wire type up to 5, strict UTF-8), and skips
 * unknown fields as protobuf-es's `fromBinary` does, but keeps none of them. Bytes are returned as
 * views of the input (`subarray`), not copies, like protobuf-es.
 *
 * Every method throws {@link WireFormatError} when the bytes are truncated or malformed, and never
 * reads outside the input. Each call is O(bytes read) and allocates only what it returns.
 */
export class ProtoReader {
  #bytes: Uint8Array;
  #end: number;
  /** The next byte to read; never past `#end` between calls. */
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#end = bytes.length;
  }

  /** Starts reading `bytes` from the beginning, so that one reader serves many messages. */
  reset(bytes: Uint8Array): this {
    this.#bytes = bytes;
    this.#end = bytes.length;
    this.#pos = 0;
    return this;
  }

  /** Whether every byte has been read. */
  get done(): boolean {
    return this.#pos >= this.#end;
  }

  /**
   * Reads a tag and returns it whole, `fieldNo << 3 | wireType`, so that a decoder can switch on
   * the pair without allocating one. Throws for field number 0, a wire type above 5, or a tag that
   * does not fit in 32 bits.
   */
  tag(): number {
    const start = this.#pos;
    const tag = this.uint32("tag");
    const length = this.#pos - start;
    if (length > 5 || (length === 5 && (this.#bytes[this.#pos - 1] as number) > 0x0f)) {
      throw new WireFormatError("tag does not fit in 32 bits");
    }
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    if (fieldNo === 0 || wireType > WireType.Bit32) {
      throw new WireFormatError(`illegal tag: field ${fieldNo}, wire type ${wireType}`);
    }
    return tag;
  }

  /**
   * Reads a varint as an unsigned 32-bit integer: its low 32 bits, as protobuf-es does (an int32
   * encoded as 10 bytes reads back as its two's complement). `what` names it in errors.
   */
  uint32(what: string): number {
    const bytes = this.#bytes;
    const end = this.#end;
    let pos = this.#pos;
    // One byte is the common case: tags, short lengths, small numbers.
    if (pos < end) {
      const first = bytes[pos] as number;
      if (first < 0x80) {
        this.#pos = pos + 1;
        return first;
      }
    }
    let result = 0;
    for (let index = 0; index < 10; index++) {
      if (pos >= end) throw new WireFormatError(`${what} is truncated`);
      const byte = bytes[pos++] as number;
      if (index < 4) {
        result |= (byte & 0x7f) << (7 * index);
      } else if (index === 4) {
        result |= (byte & 0x0f) << 28;
      }
      if (byte < 0x80) {
        this.#pos = pos;
        return result >>> 0;
      }
    }
    throw new WireFormatError(`${what} is a varint longer than 10 bytes`);
  }

  /** Reads a length-delimited field as a view of the input. `what` names it in errors. */
  bytes(what: string): Uint8Array {
    const start = this.#delimited(what);
    return this.#bytes.subarray(start, this.#pos);
  }

  /**
   * Reads a length-delimited field of 8 bytes into `into` and returns it; returns undefined, having
   * read nothing, when the field has another length (read it with `bytes`). `what` names it in
   * errors. Copying 8 bytes costs less than making a view.
   */
  bytes8(what: string, into: Uint8Array): Uint8Array | undefined {
    const at = this.#pos;
    const start = this.#delimited(what);
    if (this.#pos - start !== 8) {
      this.#pos = at;
      return undefined;
    }
    const bytes = this.#bytes;
    for (let i = 0; i < 8; i++) into[i] = bytes[start + i] as number;
    return into;
  }

  /**
   * Reads a length-delimited field as a string, rejecting invalid UTF-8 as protobuf-es does for
   * proto3 strings. `what` names the field in errors. Short ASCII strings, the usual tenant, model
   * and scheme labels, are built without a TextDecoder call.
   *
   * When the bytes spell `recent` (ASCII only), `recent` itself is returned: a field that repeats
   * from call to call then costs no allocation, and V8 has already hashed the string for every
   * `Map` it keys.
   */
  string(what: string, recent?: string): string {
    const start = this.#delimited(what);
    const end = this.#pos;
    const bytes = this.#bytes;
    if (
      recent !== undefined &&
      recent.length === end - start &&
      spellsAscii(bytes, start, recent)
    ) {
      return recent;
    }
    if (end - start <= SHORT_STRING_BYTES) {
      let text = "";
      for (let index = start; index < end; index++) {
        const byte = bytes[index] as number;
        if (byte >= 0x80) return decodeStrictUtf8(bytes.subarray(start, end), what);
        text += String.fromCharCode(byte);
      }
      return text;
    }
    return decodeStrictUtf8(bytes.subarray(start, end), what);
  }

  /**
   * Skips the value of a field this decoder does not know, given its tag, as protobuf-es does:
   * groups are skipped whole (their end tag must match, and they may nest `depthLeft` deep).
   * `what` names the field in errors.
   */
  skip(tag: number, depthLeft = MAX_GROUP_DEPTH, what = `field ${tag >>> 3}`): void {
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    switch (wireType) {
      case WireType.Varint: {
        const bytes = this.#bytes;
        let pos = this.#pos;
        // Like protobuf-es, any number of continuation bytes is accepted here.
        while (pos < this.#end && (bytes[pos] as number) >= 0x80) pos++;
        if (pos >= this.#end) throw new WireFormatError(`${what} is truncated`);
        this.#pos = pos + 1;
        return;
      }
      case WireType.Bit64:
        this.#advance(8, what);
        return;
      case WireType.Bit32:
        this.#advance(4, what);
        return;
      case WireType.LengthDelimited:
        this.#delimited(what);
        return;
      case WireType.StartGroup: {
        if (depthLeft <= 0) throw new WireFormatError(`${what}: groups nest too deeply`);
        for (;;) {
          const inner = this.tag();
          if ((inner & 7) === WireType.EndGroup) {
            if (inner >>> 3 !== fieldNo) {
              throw new WireFormatError(
                `${what}: group ends with the end tag of field ${inner >>> 3}`,
              );
            }
            return;
          }
          this.skip(inner, depthLeft - 1);
        }
      }
      default:
        // EndGroup outside a group; tag() rejects wire types 6 and 7.
        throw new WireFormatError(`${what}: unexpected end-group tag`);
    }
  }

  /** Moves past a fixed-width value of `length` bytes (4 or 8). `what` names it in errors. */
  fixed(length: number, what: string): void {
    this.#advance(length, what);
  }

  /** Reads a length prefix and moves past that many bytes; returns where they start. */
  #delimited(what: string): number {
    const length = this.uint32(what);
    const start = this.#pos;
    this.#advance(length, what);
    return start;
  }

  #advance(length: number, what: string): void {
    if (length > this.#end - this.#pos) {
      throw new WireFormatError(`${what} runs past the end of the message`);
    }
    this.#pos += length;
  }
}

/** Whether `bytes` from `start` are the ASCII string `text` (as long as it). */
function spellsAscii(bytes: Uint8Array, start: number, text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    // A non-ASCII unit never matches: a byte of the same value would be invalid UTF-8 on its own.
    if (unit >= 0x80 || bytes[start + index] !== unit) return false;
  }
  return true;
}

function decodeStrictUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new WireFormatError(`${what} is not valid UTF-8`);
  }
}
