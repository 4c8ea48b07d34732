import {
  type DescMessage,
  type DescMethod,
  type DescMethodUnary,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";

/** A parsed request, or what is wrong with its bytes. */
export type DecodeResult<T> =
  | { readonly message: T; readonly error?: undefined }
  | { readonly message?: undefined; readonly error: string };

/**
 * How the gRPC server turns one unary method's request bytes into a message and its response
 * message into bytes. By default protobuf-es does both ({@link createReflectionCodec}); a method
 * on every gateway request can have a hand-written codec instead (`lookupRouteCodec`), which must
 * read and write exactly what protobuf-es would.
 */
export interface GrpcMethodCodec<
  I extends DescMessage = DescMessage,
  O extends DescMessage = DescMessage,
> {
  /** The method the codec is for; the server matches it by identity. */
  readonly method: DescMethodUnary<I, O>;
  /** Parses a request. Never throws for bad bytes: it returns an error naming the problem. */
  decodeRequest(bytes: Uint8Array): DecodeResult<MessageShape<I>>;
  /**
   * Whether `decodeRequest`'s errors name the field, by its path, so that the server sends them
   * as they are; otherwise it names the field itself (see `unparsableMessage`).
   */
  readonly errorsNameFields?: boolean;
  /** Serializes a response. Throws for a message that cannot be encoded (a handler's bug). */
  encodeResponse(response: MessageShape<O>): Uint8Array;
}

/**
 * A codec that uses protobuf-es's reflection-based `fromBinary` and `toBinary`: correct for any
 * method, and the reference hand-written codecs are tested against. Unknown fields are kept in the
 * request (`$unknown`), as `fromBinary` does by default.
 */
export function createReflectionCodec(method: DescMethod): GrpcMethodCodec {
  return {
    // The adapter only serves unary methods; DescMethod does not narrow on methodKind.
    method: method as DescMethodUnary,
    decodeRequest(bytes) {
      try {
        return { message: fromBinary(method.input, bytes) };
      } catch (error) {
        return { error: error instanceof Error ? error.message : String(error) };
      }
    },
    encodeResponse(response) {
      return toBinary(method.output, response);
    },
  };
}
