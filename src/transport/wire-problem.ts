import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { ProtoReader, WireFormatError, WireType } from "./proto-reader.js";

/**
 * What is wrong with `bytes` as a message of `schema`, naming the field by its path
 * ("prefixes[2].prefix_hash runs past the end of the message", "tenant is not valid UTF-8"), or
 * undefined when nothing is found. For the answer to a request that did not parse: protobuf-es's
 * own errors ("premature EOF") do not say where.
 *
 * It reads as protobuf-es's `fromBinary` does, so that it finds the problem protobuf-es met: a
 * known field is read as its type says whatever its wire type (a string sent as a varint is read
 * as a length and bytes), unknown fields are skipped, and messages nest at most 100 deep. One
 * difference makes it stricter: a nested message's fields must end within its length, which
 * protobuf-es does not check, so it may name a problem in bytes protobuf-es reads. Map fields
 * (none in this API) are read as bytes. Cost: O(bytes); for requests that failed to parse.
 */
export function wireProblem(schema: DescMessage, bytes: Uint8Array): string | undefined {
  try {
    walk(schema, new ProtoReader(bytes), "", 1);
    return undefined;
  } catch (error) {
    if (error instanceof WireFormatError) return error.message;
    throw error;
  }
}

/**
 * The message a request of `schema` that did not parse is answered with, on every port:
 * "request is not a valid <TypeName>: <problem>", the problem {@link wireProblem} finds in its
 * `bytes`, else `parserError`: the account of the codec that failed, when the two read the bytes
 * differently or the bytes are not at hand (undefined: a compressed body).
 */
export function unparsableMessage(
  schema: DescMessage,
  bytes: Uint8Array | undefined,
  parserError: string,
): string {
  const problem = bytes === undefined ? undefined : wireProblem(schema, bytes);
  return `request is not a valid ${schema.typeName}: ${problem ?? parserError}`;
}

/** protobuf-es's default recursion limit: messages and groups nested deeper fail to parse. */
const MAX_DEPTH = 100;

function walk(schema: DescMessage, reader: ProtoReader, path: string, depth: number): void {
  if (depth > MAX_DEPTH) {
    throw new WireFormatError(`${path.slice(0, -1)} nests more than ${MAX_DEPTH} messages deep`);
  }
  /** Elements read so far of each list field, by field number: the next one's index. */
  const counts = new Map<number, number>();
  while (!reader.done) {
    let tag: number;
    try {
      tag = reader.tag();
    } catch (error) {
      if (path === "" || !(error instanceof WireFormatError)) throw error;
      throw new WireFormatError(`${path.slice(0, -1)}: ${error.message}`);
    }
    const field = schema.fields.find((f) => f.number === tag >>> 3);
    if (field === undefined) {
      reader.skip(tag, MAX_DEPTH - depth, `${path}field ${tag >>> 3}`);
      continue;
    }
    let name = `${path}${field.name}`;
    if (field.fieldKind === "list" || field.fieldKind === "map") {
      const index = counts.get(field.number) ?? 0;
      counts.set(field.number, index + 1);
      name += `[${index}]`;
    }
    readField(field, tag & 7, reader, name, depth);
  }
}

function readField(
  field: DescField,
  wireType: number,
  reader: ProtoReader,
  name: string,
  depth: number,
): void {
  switch (field.fieldKind) {
    case "message":
      walk(field.message, new ProtoReader(reader.bytes(name)), `${name}.`, depth + 1);
      return;
    case "list": {
      if (field.listKind === "message") {
        walk(field.message, new ProtoReader(reader.bytes(name)), `${name}.`, depth + 1);
        return;
      }
      const scalar = field.scalar ?? ScalarType.INT32;
      const packed =
        wireType === WireType.LengthDelimited &&
        scalar !== ScalarType.STRING &&
        scalar !== ScalarType.BYTES;
      if (!packed) {
        readScalar(scalar, reader, name);
        return;
      }
      const elements = new ProtoReader(reader.bytes(name));
      while (!elements.done) readScalar(scalar, elements, name);
      return;
    }
    case "enum":
      readScalar(ScalarType.INT32, reader, name);
      return;
    case "scalar":
      readScalar(field.scalar, reader, name);
      return;
    case "map":
      reader.bytes(name);
      return;
  }
}

/** Reads a value of type `scalar` as protobuf-es does, whatever the field's wire type said. */
function readScalar(scalar: ScalarType, reader: ProtoReader, name: string): void {
  switch (scalar) {
    case ScalarType.STRING:
      reader.string(name);
      return;
    case ScalarType.BYTES:
      reader.bytes(name);
      return;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      reader.fixed(8, name);
      return;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      reader.fixed(4, name);
      return;
    default:
      reader.uint32(name);
  }
}
