import { format } from "node:util";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  Server,
  ServerCredentials,
  type ServerWritableStream,
  type ServiceDefinition,
  setLogger,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import type { GrpcMethodCodec } from "./grpc-method-codec.js";
import { createGrpcReflection } from "./grpc-reflection.js";
import { createGrpcUnaryAdapter } from "./grpc-unary-adapter.js";
import { lookupRouteCodec } from "./lookup-route-codec.js";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  ignoreUnexpectedError,
  type UnexpectedErrorHandler,
} from "./public-error.js";
import type { UnaryServiceImpl } from "./unary-service.js";

/** Options for `createGrpcServer()`. */
export interface GrpcServerOptions<S extends GenService<GenServiceMethods>> {
  /** The service to serve, e.g. the generated `CacheIndexService`. Unary methods only. */
  service: S;
  /** Its implementation; the same object the HTTP server serves. */
  impl: UnaryServiceImpl<S>;
  /**
   * Address to listen on. An IPv6 address is written without brackets.
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * Port to listen on; 0 picks a free one (`start()` says which).
   * @default 50051
   */
  port?: number;
  /**
   * Largest message, in bytes, the server receives or sends. A larger request, or a response that
   * would be larger, ends the call with RESOURCE_EXHAUSTED.
   * @default 4 MiB (4_194_304)
   */
  maxMessageBytes?: number;
  /**
   * Called with an error a handler threw that was not a `ConnectError` (the client gets INTERNAL
   * and a generic message), and the RPC's full name. For logging; must not throw.
   * @default ignores the error
   */
  onUnexpectedError?: UnexpectedErrorHandler;
  /**
   * Hand-written codecs for methods on the hot path, each used for the method it names (matched by
   * identity) in place of protobuf-es's reflection-based `fromBinary` and `toBinary`, which every
   * other method uses. A codec must read and write exactly what protobuf-es does; `[]` serves
   * every method with protobuf-es.
   * @default DEFAULT_GRPC_CODECS (LookupRoute's)
   */
  codecs?: readonly GrpcMethodCodec[];
}

/** Where {@link routeGrpcJsLogs} sends grpc-js's own lines: a logger's methods by level. */
export interface GrpcJsLogSink {
  error(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

/**
 * Sends what grpc-js logs itself (e.g. "No address added out of total 1 resolved" when a port is
 * taken) to `sink` with `component: "grpc-js"`, instead of to stderr as plain text, so that every
 * line the process writes is JSON. grpc-js has one logger per process: the last call wins.
 */
export function routeGrpcJsLogs(sink: GrpcJsLogSink): void {
  const fields = { component: "grpc-js" };
  const at =
    (level: keyof GrpcJsLogSink) =>
    (message?: unknown, ...rest: unknown[]) =>
      sink[level](fields, format(message, ...rest));
  setLogger({ error: at("error"), info: at("info"), debug: at("debug") });
}

/** The hand-written codecs `createGrpcServer()` uses unless told otherwise: LookupRoute's. */
export const DEFAULT_GRPC_CODECS: readonly GrpcMethodCodec[] = [lookupRouteCodec];

/**
 * Creates a gRPC server (grpc-js, HTTP/2 without TLS) for `service`, with `grpc.health.v1.Health`
 * and server reflection (`v1` and `v1alpha`) alongside. It does not listen until `start()`.
 *
 * Health reports NOT_SERVING for both "" and `service.typeName` until `setServing(true)`.
 */
export function createGrpcServer<S extends GenService<GenServiceMethods>>(
  options: GrpcServerOptions<S>,
): GrpcServer {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const onUnexpectedError = options.onUnexpectedError ?? ignoreUnexpectedError;
  const server = new Server({
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
  });
  const adapter = createGrpcUnaryAdapter(
    options.service,
    options.impl,
    onUnexpectedError,
    options.codecs ?? DEFAULT_GRPC_CODECS,
  );
  server.addService(adapter.definition, adapter.implementation);
  createGrpcReflection([options.service]).addToServer(server);
  return new GrpcServer({
    server,
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 50051,
    healthNames: ["", options.service.typeName],
  });
}

interface ResolvedGrpcServerOptions {
  server: Server;
  host: string;
  port: number;
  /** The names health answers for: "" (the whole server) and each service's typeName. */
  healthNames: readonly string[];
}

/** A gRPC server made by `createGrpcServer()`. */
export class GrpcServer {
  readonly #server: Server;
  readonly #address: string;
  readonly #health: HealthImplementation;
  readonly #healthNames: readonly string[];
  /** What health reports for every name. */
  #status: ServingStatus = "NOT_SERVING";
  /** Health `Watch` calls open now: shutdown ends them (they never end by themselves). */
  readonly #watches = new Set<ServerWritableStream<unknown, unknown>>();
  #started: Promise<{ port: number }> | undefined;
  /** Set once shutdown starts; from then on health stays NOT_SERVING. */
  #stopped: Promise<void> | undefined;

  /** @private Use `createGrpcServer()`. */
  constructor(options: ResolvedGrpcServerOptions) {
    this.#server = options.server;
    this.#address = options.host.includes(":")
      ? `[${options.host}]:${options.port}`
      : `${options.host}:${options.port}`;
    this.#healthNames = options.healthNames;
    this.#health = new HealthImplementation(
      Object.fromEntries(options.healthNames.map((name) => [name, "NOT_SERVING"])),
    );
    // Health is added through a server that keeps track of its Watch calls, so that shutdown can
    // end them instead of waiting out its grace for them.
    this.#health.addToServer({
      addService: (service, implementation) => {
        const watch = implementation.watch as (
          call: ServerWritableStream<unknown, unknown>,
        ) => void;
        this.#server.addService(service as ServiceDefinition, {
          ...(implementation as UntypedServiceImplementation),
          watch: (call: ServerWritableStream<unknown, unknown>) => {
            if (this.#stopped !== undefined) {
              // Its request arrived after shutdown had ended the others: it hears NOT_SERVING, ends.
              watch(call);
              call.end();
              return;
            }
            this.#watches.add(call);
            call.on("cancelled", () => this.#watches.delete(call));
            watch(call);
          },
        });
      },
    });
  }

  /**
   * Binds and starts serving. Resolves with the bound port (useful with port 0); rejects when the
   * address cannot be bound. Calling it again returns the first call's promise.
   */
  start(): Promise<{ port: number }> {
    this.#started ??= new Promise((resolve, reject) => {
      this.#server.bindAsync(this.#address, ServerCredentials.createInsecure(), (error, port) => {
        if (error) {
          reject(error);
        } else {
          resolve({ port });
        }
      });
    });
    return this.#started;
  }

  /**
   * Sets what health reports for "" and the service: SERVING when `serving`, else NOT_SERVING.
   * Health watchers are told at once. Ignored once shutdown has started.
   */
  setServing(serving: boolean): void {
    if (this.#stopped === undefined) {
      this.#setHealth(serving ? "SERVING" : "NOT_SERVING");
    }
  }

  /**
   * Stops the server: health turns NOT_SERVING (watchers hear it, then their `Watch` calls end with
   * OK), new calls are refused, calls in flight finish. Connections still open after `graceMs` (a
   * slow call) are closed forcibly. Resolves once every connection is closed; later calls return the same
   * promise.
   */
  shutdown(graceMs: number): Promise<void> {
    this.#stopped ??= this.#drain(graceMs);
    return this.#stopped;
  }

  #drain(graceMs: number): Promise<void> {
    this.#setHealth("NOT_SERVING");
    for (const call of this.#watches) call.end();
    this.#watches.clear();
    return new Promise((resolve) => {
      const force = setTimeout(() => this.#server.forceShutdown(), graceMs);
      // forceShutdown() closes the remaining sessions, which completes tryShutdown() too.
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  #setHealth(status: ServingStatus): void {
    // Watchers hear each change once (grpc-health-check tells them of every call, changed or not).
    if (status === this.#status) return;
    this.#status = status;
    for (const name of this.#healthNames) {
      this.#health.setStatus(name, status);
    }
  }
}
