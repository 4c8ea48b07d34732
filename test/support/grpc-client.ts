import {
  create,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type ChannelOptions, Client, credentials, type ServiceError } from "@grpc/grpc-js";

/** One promise-returning function per unary method of `S`, named by the method's `localName`. */
export type GrpcClientMethods<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethodUnary<infer I, infer O>
    ? (request?: MessageInitShape<I>) => Promise<MessageShape<O>>
    : never;
};

/** A test client made by `createGrpcClient()`. */
export type GrpcClient<S extends DescService> = GrpcClientMethods<S> & {
  /**
   * Sends `bytes` as the request of the method named `methodName` (the proto name, e.g.
   * "LookupRoute") without encoding anything, and resolves with the response's bytes. For requests
   * no well-formed message can express, such as malformed protobuf.
   */
  sendBytes(methodName: string, bytes: Uint8Array): Promise<Uint8Array>;
  /** Closes the channel. Calls still in flight fail with CANCELLED. */
  close(): void;
};

/**
 * Creates a grpc-js client for the unary methods of a protobuf-es service, connecting to `address`
 * ("127.0.0.1:50051") without TLS. Requests are built with protobuf-es `create()`, so a partial
 * init object is enough: `await client.lookupRoute({ tenant: "acme" })`.
 *
 * A call that ends with a status other than OK rejects with grpc-js's `ServiceError`, whose
 * `code` is the status and `details` the server's message. `channelOptions` go to grpc-js as is,
 * e.g. `{ "grpc.max_receive_message_length": -1 }`.
 */
export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  channelOptions: ChannelOptions = {},
): GrpcClient<S> {
  const channel = new Client(address, credentials.createInsecure(), channelOptions);
  const unary = (path: string, bytes: Uint8Array): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      channel.makeUnaryRequest(
        path,
        toBuffer,
        passBytes,
        bytes,
        (error: ServiceError | null, response?: Buffer) => {
          if (error) {
            reject(error);
          } else {
            resolve(response ?? new Uint8Array());
          }
        },
      );
    });
  const client: Record<string, unknown> = {
    sendBytes: (methodName: string, bytes: Uint8Array) =>
      unary(`/${service.typeName}/${methodName}`, bytes),
    close: () => channel.close(),
  };
  for (const method of service.methods) {
    if (method.methodKind !== "unary") {
      continue;
    }
    const path = `/${service.typeName}/${method.name}`;
    client[method.localName] = async (init?: MessageInitShape<typeof method.input>) => {
      const request = toBinary(method.input, create(method.input, init));
      return fromBinary(method.output, await unary(path, request));
    };
  }
  // Built from `service.methods`, which is what GrpcClientMethods<S> maps over.
  return client as GrpcClient<S>;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function passBytes(bytes: Buffer): Buffer {
  return bytes;
}
