import { type ClientHttp2Session, connect, constants } from "node:http2";

/**
 * A gRPC unary client on bare `node:http2`, for benchmark clients: one connection, a request per
 * call, the 5-byte length prefix and `grpc-status` handled and nothing else (no deadlines,
 * compression, retries or interceptors). A gateway's client (Envoy, Go, Rust) does about this much
 * work per call; grpc-js's client does several times more, which on a small machine would be
 * measured as the server's latency.
 */
export class H2UnaryClient {
  readonly #session: ClientHttp2Session;

  constructor(address: string) {
    this.#session = connect(`http://${address}`);
    // A benchmark sends many calls at once on one connection.
    this.#session.setMaxListeners(0);
  }

  /** Calls `path` (`/package.Service/Method`) with an encoded request; resolves with the response. */
  call(path: string, request: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const stream = this.#session.request({
        [constants.HTTP2_HEADER_METHOD]: "POST",
        [constants.HTTP2_HEADER_PATH]: path,
        [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
        [constants.HTTP2_HEADER_TE]: "trailers",
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = "";
      const readStatus = (headers: Record<string, unknown>) => {
        if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
        if (headers["grpc-message"] !== undefined) message = String(headers["grpc-message"]);
      };
      stream.on("response", readStatus);
      stream.on("trailers", readStatus);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        if (status !== "0") {
          reject(new Error(`${path}: grpc-status ${status ?? "missing"} ${message}`));
          return;
        }
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        resolve(body.subarray(5));
      });
      const framed = Buffer.allocUnsafe(5 + request.byteLength);
      framed[0] = 0;
      framed.writeUInt32BE(request.byteLength, 1);
      framed.set(request, 5);
      stream.end(framed);
    });
  }

  close(): void {
    this.#session.close();
  }
}
