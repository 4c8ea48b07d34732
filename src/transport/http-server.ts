import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Interceptor, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createOpsEndpoints, type MetricsExposition, type Readiness } from "./ops-endpoints.js";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  ignoreUnexpectedError,
  toPublicError,
  type UnexpectedErrorHandler,
} from "./public-error.js";
import type { UnaryServiceImpl } from "./unary-service.js";
import { answerUnparsableRequests } from "./unparsable-requests.js";

/** Options for `createHttpServer()`. */
export interface HttpServerOptions<S extends GenService<GenServiceMethods>> {
  /** The service to serve, e.g. the generated `CacheIndexService`. */
  service: S;
  /** Its implementation; the same object the gRPC server serves. */
  impl: UnaryServiceImpl<S>;
  /** Produces the body of `GET /metrics`, e.g. from a prom-client registry. */
  metrics: () => Promise<MetricsExposition>;
  /** Decides `GET /readyz`: 200 when ready, else 503. Called per request, so keep it cheap. */
  readiness: () => Readiness;
  /**
   * Address to listen on.
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * Port to listen on; 0 picks a free one (`start()` says which).
   * @default 8080
   */
  port?: number;
  /**
   * Largest request or response body, in bytes. A larger request is answered with
   * `resource_exhausted` (HTTP 429 in the Connect protocol).
   * @default 4 MiB (4_194_304)
   */
  maxMessageBytes?: number;
  /**
   * Called with an error a handler threw that was not a `ConnectError` (the client gets `internal`
   * and a generic message) and the RPC's full name, or with a failure of `metrics` or `readiness`
   * and the endpoint ("GET /metrics"). For logging; must not throw.
   * @default ignores the error
   */
  onUnexpectedError?: UnexpectedErrorHandler;
}

/**
 * Creates an HTTP/1.1 server (node:http) that serves `service` with the Connect protocol (JSON and
 * binary) and gRPC-web at `/<typeName>/<Method>`, plus operator endpoints: `GET /metrics`,
 * `GET /healthz` (liveness) and `GET /readyz` (readiness). Any other path is 404. Plain gRPC is
 * left to the gRPC server: it needs HTTP/2. It does not listen until `start()`.
 */
export function createHttpServer<S extends GenService<GenServiceMethods>>(
  options: HttpServerOptions<S>,
): HttpServer {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const onUnexpectedError = options.onUnexpectedError ?? ignoreUnexpectedError;
  // connect-node would send a plain Error's message to the client with code `unknown`; this gives
  // it the same treatment as the gRPC server does.
  const hideUnexpectedErrors: Interceptor = (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      const method = `${request.service.typeName}/${request.method.name}`;
      throw toPublicError(error, method, onUnexpectedError);
    }
  };
  const opsEndpoints = createOpsEndpoints({
    metrics: options.metrics,
    readiness: options.readiness,
    onUnexpectedError,
  });
  const handler = connectNodeAdapter({
    // UnaryServiceImpl<S> is a subtype of connect's ServiceImpl<S> (synchronous unary methods that
    // take no context) that TypeScript cannot prove for a generic S.
    routes: (router) => {
      router.service(options.service, options.impl as unknown as ServiceImpl<S>);
      // connectNodeAdapter reads router.handlers once routes() returns: wrapping them here is
      // how a body that does not parse gets the gRPC port's invalid_argument, not internal.
      router.handlers.forEach((handler, i) => {
        router.handlers[i] = answerUnparsableRequests(handler);
      });
    },
    grpc: false,
    // As proto3 JSON has it (connect-es ignores them by default): a misspelled field, such as
    // `candidateReplicaId`, would otherwise be dropped without a word and change the answer.
    jsonOptions: { ignoreUnknownFields: false },
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    interceptors: [hideUnexpectedErrors],
    // Requests for any path that is not an RPC. The server is node:http, so they are node:http's
    // types, not the HTTP/2 ones connect-node also accepts.
    fallback: (request, response) =>
      opsEndpoints(request as IncomingMessage, response as ServerResponse),
  });
  return new HttpServer({
    handler,
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 8080,
  });
}

interface ResolvedHttpServerOptions {
  handler: (request: IncomingMessage, response: ServerResponse) => void;
  host: string;
  port: number;
}

/** An HTTP server made by `createHttpServer()`. */
export class HttpServer {
  readonly #server: Server;
  readonly #handler: (request: IncomingMessage, response: ServerResponse) => void;
  readonly #host: string;
  readonly #port: number;
  #started: Promise<{ port: number }> | undefined;
  /** Set once shutdown starts; from then on every response closes its connection. */
  #stopped: Promise<void> | undefined;

  /** @private Use `createHttpServer()`. */
  constructor(options: ResolvedHttpServerOptions) {
    this.#handler = options.handler;
    this.#host = options.host;
    this.#port = options.port;
    this.#server = createServer(this.#handle);
  }

  /**
   * Starts listening. Resolves with the bound port (useful with port 0); rejects when the address
   * cannot be bound. Calling it again returns the first call's promise.
   */
  start(): Promise<{ port: number }> {
    this.#started ??= new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off("error", reject);
        const address = this.#server.address();
        resolve({ port: typeof address === "object" && address !== null ? address.port : 0 });
      });
    });
    return this.#started;
  }

  /**
   * Stops the server: no new connections, idle keep-alive connections closed at once, requests in
   * flight finish and then close their connection. Connections still open after `graceMs` are
   * destroyed. Resolves once every connection is closed; later calls return the same promise.
   */
  shutdown(graceMs: number): Promise<void> {
    this.#stopped ??= new Promise((resolve) => {
      const force = setTimeout(() => this.#server.closeAllConnections(), graceMs);
      // close() also closes idle connections; the callback waits for the busy ones.
      this.#server.close(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return this.#stopped;
  }

  readonly #handle = (request: IncomingMessage, response: ServerResponse): void => {
    if (this.#stopped !== undefined) {
      response.setHeader("connection", "close");
    }
    response.once("finish", this.#closeIfIdle);
    this.#handler(request, response);
  };

  /**
   * After a response, while shutting down: a keep-alive connection that just went idle would
   * otherwise hold `close()` open until its keep-alive timeout.
   */
  readonly #closeIfIdle = (): void => {
    if (this.#stopped !== undefined) {
      this.#server.closeIdleConnections();
    }
  };
}
