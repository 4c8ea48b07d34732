import type { DescMethod, Message } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { createReflectionCodec, type GrpcMethodCodec } from "./grpc-method-codec.js";
import { toPublicError, type UnexpectedErrorHandler } from "./public-error.js";
import type { UnaryServiceImpl } from "./unary-service.js";
import { unparsableMessage } from "./wire-problem.js";

/** A grpc-js service definition and the handlers to register with it, ready for `addService`. */
export interface GrpcUnaryAdapter {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

/**
 * Adapts a protobuf-es service and its synchronous implementation to grpc-js. Everything that can
 * be is done once, here: one definition entry per method (path `/${service.typeName}/${method.name}`)
 * and one handler per method.
 *
 * The definition moves raw bytes, and each handler parses, calls and serializes itself, with the
 * method's codec from `codecs` (matched by method identity) or else protobuf-es's. grpc-js answers
 * a `requestDeserialize` that throws with INTERNAL; parsing in the handler lets a request that is
 * not valid protobuf get INVALID_ARGUMENT instead: "request is not a valid <TypeName>: <problem>",
 * the problem as a hand-written codec names it (`errorsNameFields`), else as
 * {@link unparsableMessage} finds it, as the HTTP port does. The two differ only for a field sent
 * with a wire type its type does not use, which a hand-written codec refuses where protobuf-es
 * reads on.
 * Any other failure goes through `toPublicError`. A response is encoded as soon as the
 * implementation returns it, before the handler returns to grpc-js, so an implementation may hand
 * back a message that it overwrites at its next call. Size limits are grpc-js's: it answers
 * RESOURCE_EXHAUSTED for a message over the server's receive or send limit before or after the
 * handler runs.
 *
 * Throws when the service has a streaming method: the impl type only describes unary ones.
 */
export function createGrpcUnaryAdapter<S extends GenService<GenServiceMethods>>(
  service: S,
  impl: UnaryServiceImpl<S>,
  onUnexpectedError: UnexpectedErrorHandler,
  codecs: readonly GrpcMethodCodec[] = [],
): GrpcUnaryAdapter {
  // UnaryServiceImpl<S> is a conditional type TypeScript cannot index generically; its shape is
  // one function per method's localName, which is what we look up.
  const handlersByName = impl as unknown as Record<string, UnaryHandler | undefined>;
  const definition: Record<string, ServiceDefinition[string]> = {};
  const implementation: UntypedServiceImplementation = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary") {
      throw new Error(`${service.typeName}/${method.name} is ${method.methodKind}, not unary`);
    }
    const handler = handlersByName[method.localName];
    if (typeof handler !== "function") {
      throw new Error(`the implementation of ${service.typeName} has no ${method.localName}()`);
    }
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: passBytes,
      requestDeserialize: passBytes,
      responseSerialize: passBytes,
      responseDeserialize: passBytes,
      originalName: method.name,
    };
    implementation[method.localName] = createUnaryCallHandler(
      method,
      codecs.find((codec) => codec.method === method) ?? createReflectionCodec(method),
      handler.bind(impl),
      onUnexpectedError,
    );
  }
  return { definition, implementation };
}

type UnaryHandler = (request: unknown) => unknown;

function passBytes(bytes: Buffer): Buffer {
  return bytes;
}

function createUnaryCallHandler(
  method: DescMethod,
  codec: GrpcMethodCodec,
  handler: UnaryHandler,
  onUnexpectedError: UnexpectedErrorHandler,
): (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => void {
  const fullName = `${method.parent.typeName}/${method.name}`;
  return (call, callback) => {
    const decoded = codec.decodeRequest(call.request);
    if (decoded.error !== undefined) {
      const details = codec.errorsNameFields
        ? `request is not a valid ${method.input.typeName}: ${decoded.error}`
        : unparsableMessage(method.input, call.request, decoded.error);
      callback({ code: status.INVALID_ARGUMENT, details });
      return;
    }
    let response: Uint8Array;
    try {
      // The handler is this method's, so it returns the method's output message: the cast only
      // restates what the adapter's signature already checked.
      response = codec.encodeResponse(handler(decoded.message) as Message);
    } catch (error) {
      const publicError = toPublicError(error, fullName, onUnexpectedError);
      // Connect's Code values are the gRPC status numbers, so the code passes through as is.
      callback({ code: publicError.code as number, details: publicError.rawMessage });
      return;
    }
    // A Buffer as is, or a view on the same memory: no copy on the way out.
    callback(
      null,
      Buffer.isBuffer(response)
        ? response
        : Buffer.from(response.buffer, response.byteOffset, response.byteLength),
    );
  };
}
