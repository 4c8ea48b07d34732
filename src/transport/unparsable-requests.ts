import { Code } from "@connectrpc/connect";
import type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { unparsableMessage } from "./wire-problem.js";

/**
 * How connect-es words its error for a binary request body protobuf-es cannot parse. It answers
 * that error `internal`, before any interceptor runs; the gRPC port answers the same bytes
 * `invalid_argument`, as the contract says.
 */
const PARSE_FAILURE = "parse binary:";
/** The Connect protocol's HTTP status for `internal`, and for `invalid_argument`. */
const INTERNAL_STATUS = 500;
const INVALID_ARGUMENT_STATUS = 400;
/** The flag of a gRPC-web frame that carries the trailer. */
const TRAILER_FLAG = 0x80;

/**
 * Wraps a connect-es handler so that a request whose binary body is not a valid message of the
 * method's input is answered `invalid_argument` with the gRPC port's words ("request is not a
 * valid <type>: <problem>", see `unparsableMessage`), in the Connect protocol (HTTP 400) and in
 * gRPC-web (`grpc-status: 3`), instead of `internal` with the parser's message. The problem is
 * found in the request's bytes, which the wrapper keeps while a binary call runs; in a compressed
 * body it is protobuf-es's account ("premature EOF"). Every other response passes through unchanged.
 * The handler's own errors never read "parse binary:": the service's messages are its own, and
 * unexpected errors reach the client as "internal error".
 */
export function answerUnparsableRequests(handler: UniversalHandler): UniversalHandler {
  const schema = handler.method.input;
  const wrapped = async (request: UniversalServerRequest) => {
    const chunks: Uint8Array[] = [];
    const response = await handler(isBinary(request) ? keepingBody(request, chunks) : request);
    const invalid = (parserError: string) =>
      unparsableMessage(schema, messageBytes(request, chunks), parserError);
    const contentType = response.header?.get("content-type") ?? "";
    if (contentType.startsWith("application/grpc-web")) {
      return response.body === undefined
        ? response
        : { ...response, body: grpcWebBody(response.body, invalid) };
    }
    if (response.status === INTERNAL_STATUS && contentType.startsWith("application/json")) {
      return await connectUnaryError(response, invalid);
    }
    return response;
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

/** The message of an unparsable request, given the parser's account of the problem. */
type InvalidMessage = (parserError: string) => string;

/** Whether the request's body is a binary message (the only kind that fails as "parse binary:"). */
function isBinary(request: UniversalServerRequest): boolean {
  const type = request.header.get("content-type") ?? "";
  return (
    type.startsWith("application/proto") ||
    type === "application/grpc-web" ||
    type.startsWith("application/grpc-web+proto")
  );
}

/**
 * `request` with its byte body (if it has one) kept in `chunks` as the handler reads it: until the
 * call ends, beside connect-es's own copy, so at most twice `--max-message-bytes` per call.
 */
function keepingBody(
  request: UniversalServerRequest,
  chunks: Uint8Array[],
): UniversalServerRequest {
  const body = request.body;
  if (body === null || typeof body !== "object" || !(Symbol.asyncIterator in body)) return request;
  async function* kept(): AsyncIterable<Uint8Array> {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      yield chunk;
    }
  }
  return { ...request, body: kept() };
}

/**
 * The request message's bytes, from the body read into `chunks`: the whole body in the Connect
 * protocol, the first frame's payload in gRPC-web; undefined when compressed (or cut short).
 */
function messageBytes(
  request: UniversalServerRequest,
  chunks: Uint8Array[],
): Uint8Array | undefined {
  const body = Buffer.concat(chunks);
  const contentType = request.header.get("content-type") ?? "";
  if (!contentType.startsWith("application/grpc-web")) {
    const encoding = request.header.get("content-encoding");
    return encoding === null || encoding === "identity" ? body : undefined;
  }
  // A frame: a flags byte (bit 0: compressed), a 4-byte big-endian length, the message.
  if (body.byteLength < 5 || (body[0] as number) & 1) return undefined;
  const length = body.readUInt32BE(1);
  return length <= body.byteLength - 5 ? body.subarray(5, 5 + length) : undefined;
}

/** A Connect-protocol error response (a JSON body), with a parse failure made `invalid`. */
async function connectUnaryError(
  response: UniversalServerResponse,
  invalid: InvalidMessage,
): Promise<UniversalServerResponse> {
  const header = response.header;
  // An error body is too small to be compressed (under compressMinBytes); a compressed one is
  // left as it is rather than decompressed here.
  if (response.body === undefined || header === undefined || header.has("content-encoding")) {
    return response;
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const parserError = parseFailure(bytes);
  if (parserError === undefined) return { ...response, body: once(bytes) };
  const body = new TextEncoder().encode(
    JSON.stringify({ code: "invalid_argument", message: invalid(parserError) }),
  );
  const rewritten = new Headers(header);
  rewritten.set("content-length", String(body.byteLength));
  return { ...response, status: INVALID_ARGUMENT_STATUS, header: rewritten, body: once(body) };
}

/**
 * The parser's account of the problem when a Connect error body (`{"code": ..., "message": ...}`)
 * is a parse failure's; undefined for any other body.
 */
function parseFailure(bytes: Uint8Array): string | undefined {
  try {
    const error = JSON.parse(new TextDecoder().decode(bytes)) as {
      code?: unknown;
      message?: unknown;
    };
    return error.code === "internal" &&
      typeof error.message === "string" &&
      error.message.startsWith(PARSE_FAILURE)
      ? error.message.slice(PARSE_FAILURE.length).trim()
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A gRPC-web response body with a parse failure's trailer made `invalid`. connect-es sends each
 * frame as a chunk of its own, and a call whose request does not parse sends only the trailer.
 */
async function* grpcWebBody(
  body: AsyncIterable<Uint8Array>,
  invalid: InvalidMessage,
): AsyncIterable<Uint8Array> {
  for await (const chunk of body) yield rewriteTrailer(chunk, invalid) ?? chunk;
}

/**
 * The trailer frame `chunk` rewritten, when it is exactly one uncompressed trailer frame of a parse
 * failure. A trailer is CRLF-separated `key: value` lines; `grpc-message` is percent-encoded.
 */
function rewriteTrailer(chunk: Uint8Array, invalid: InvalidMessage): Uint8Array | undefined {
  if (chunk.byteLength < 5 || chunk[0] !== TRAILER_FLAG) return undefined;
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (view.getUint32(1) !== chunk.byteLength - 5) return undefined;
  const lines = new TextDecoder().decode(chunk.subarray(5)).split("\r\n");
  const value = (key: string) =>
    lines.find((line) => line.startsWith(`${key}: `))?.slice(key.length + 2);
  const message = value("grpc-message");
  if (value("grpc-status") !== String(Code.Internal) || message === undefined) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(message);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith(PARSE_FAILURE)) return undefined;
  const kept = lines.filter(
    (line) =>
      line !== "" && !line.startsWith("grpc-status: ") && !line.startsWith("grpc-message: "),
  );
  const trailer = [
    `grpc-status: ${Code.InvalidArgument}`,
    `grpc-message: ${encodeURIComponent(invalid(decoded.slice(PARSE_FAILURE.length).trim()))}`,
    ...kept,
  ]
    .map((line) => `${line}\r\n`)
    .join("");
  const data = new TextEncoder().encode(trailer);
  const frame = new Uint8Array(5 + data.byteLength);
  frame[0] = TRAILER_FLAG;
  new DataView(frame.buffer).setUint32(1, data.byteLength);
  frame.set(data, 5);
  return frame;
}

/** One chunk as a response body. */
async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
