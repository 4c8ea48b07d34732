import { gzipSync } from "node:zlib";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { CacheIndexService } from "../../gen/inferencecache/v1/cache_index_pb.js";
import { createHttpServer, type HttpServer } from "../../src/transport/http-server.js";
import type { MetricsExposition, Readiness } from "../../src/transport/ops-endpoints.js";
import { createErrorRecorder, fakeCacheIndex, secretFailure } from "./fake-cache-index.js";

const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
const lookupRoutePath = "/inferencecache.v1.CacheIndexService/LookupRoute";

describe("createHttpServer()", () => {
  let server: HttpServer | undefined;
  const recorder = createErrorRecorder();
  let readiness: Readiness = { ready: true, detail: {} };
  let metrics: () => Promise<MetricsExposition> = async () => ({
    contentType: prometheusContentType,
    body: "cache_index_entries 3\n",
  });

  afterEach(async () => {
    await server?.shutdown(0);
    server = undefined;
    recorder.errors.length = 0;
    readiness = { ready: true, detail: {} };
    metrics = async () => ({ contentType: prometheusContentType, body: "cache_index_entries 3\n" });
  });

  async function startServer(maxMessageBytes?: number): Promise<string> {
    server = createHttpServer({
      service: CacheIndexService,
      impl: fakeCacheIndex,
      port: 0,
      metrics: () => metrics(),
      readiness: () => readiness,
      onUnexpectedError: recorder.onUnexpectedError,
      ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
    });
    const { port } = await server.start();
    return `http://127.0.0.1:${port}`;
  }

  function postJson(baseUrl: string, path: string, body: string): Promise<Response> {
    return fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  }

  describe("the Connect protocol", () => {
    it("answers a JSON request with the JSON response", async () => {
      const baseUrl = await startServer();
      const response = await postJson(
        baseUrl,
        lookupRoutePath,
        JSON.stringify({ tenant: "acme", model: "llama", prefixHashes: ["AQ=="] }),
      );
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        hints: [{ replicaId: "replica-0", matchedBlocks: 1 }],
        reasonCode: "REASON_CODE_PREFIX_MATCH",
        evaluatedBlocks: 1,
        detail: "acme/llama",
      });
    });

    it("refuses a JSON field it does not know, naming it, rather than ignoring a misspelling", async () => {
      const baseUrl = await startServer();
      const response = await postJson(
        baseUrl,
        lookupRoutePath,
        JSON.stringify({
          tenant: "acme",
          model: "llama",
          prefixHashes: ["AQ=="],
          candidateReplicaId: ["a"],
        }),
      );
      expect(response.status).toBe(400);
      const body = (await response.json()) as { code: string; message: string };
      expect(body.code).toBe("invalid_argument");
      expect(body.message).toContain("candidateReplicaId");
    });

    it("answers a binary request from a Connect client", async () => {
      const baseUrl = await startServer();
      const client = createClient(
        CacheIndexService,
        createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
      );
      const response = await client.getCacheState({ tenant: "acme", model: "llama" });
      expect(response.tenant).toBe("acme");
    });

    it("sends a ConnectError's code and message", async () => {
      const baseUrl = await startServer();
      const response = await postJson(
        baseUrl,
        "/inferencecache.v1.CacheIndexService/ReportCacheState",
        "{}",
      );
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        code: "invalid_argument",
        message: "tenant is required",
      });
    });

    it("answers internal with a generic message when a handler throws anything else", async () => {
      const baseUrl = await startServer();
      const response = await postJson(
        baseUrl,
        "/inferencecache.v1.CacheIndexService/PublishEvent",
        "{}",
      );
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ code: "internal", message: "internal error" });
      expect(recorder.errors).toEqual([
        {
          method: "inferencecache.v1.CacheIndexService/PublishEvent",
          error: expect.objectContaining({ message: secretFailure }),
        },
      ]);
    });

    it("answers resource_exhausted (HTTP 429) to a body over maxMessageBytes", async () => {
      const baseUrl = await startServer(1024);
      const response = await postJson(
        baseUrl,
        lookupRoutePath,
        JSON.stringify({ tenant: "a".repeat(2000) }),
      );
      expect(response.status).toBe(429);
      expect(((await response.json()) as { code: string }).code).toBe("resource_exhausted");
    });

    it("answers invalid_argument (HTTP 400) to binary bytes that are not a valid request", async () => {
      const baseUrl = await startServer();
      for (const [body, problem] of [
        [Uint8Array.of(0x0a, 0x05, 0x61), "tenant runs past the end of the message"],
        [Uint8Array.of(0x0a, 0x02, 0xff, 0xfe), "tenant is not valid UTF-8"],
      ] as const) {
        const response = await fetch(`${baseUrl}${lookupRoutePath}`, {
          method: "POST",
          headers: { "content-type": "application/proto" },
          body,
        });
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({
          code: "invalid_argument",
          message: `request is not a valid inferencecache.v1.LookupRouteRequest: ${problem}`,
        });
      }
      expect(recorder.errors).toEqual([]);
    });

    it("answers a compressed body that is not a valid request with protobuf-es's account", async () => {
      const baseUrl = await startServer();
      const response = await fetch(`${baseUrl}${lookupRoutePath}`, {
        method: "POST",
        headers: { "content-type": "application/proto", "content-encoding": "gzip" },
        body: gzipSync(Uint8Array.of(0x0a, 0x05, 0x61)),
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        code: "invalid_argument",
        message: "request is not a valid inferencecache.v1.LookupRouteRequest: premature EOF",
      });
    });

    it("answers invalid_argument to a body that is not valid JSON for the request", async () => {
      const baseUrl = await startServer();
      const response = await postJson(baseUrl, lookupRoutePath, '{"tenant": 7}');
      expect(response.status).toBe(400);
      expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
    });
  });

  describe("gRPC-web", () => {
    it("answers grpc-status 3 (invalid argument) to bytes that are not a valid request", async () => {
      const baseUrl = await startServer();
      const message = Uint8Array.of(0x0a, 0x05, 0x61);
      const response = await fetch(`${baseUrl}${lookupRoutePath}`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto" },
        body: Uint8Array.of(0, 0, 0, 0, message.length, ...message),
      });
      const body = new Uint8Array(await response.arrayBuffer());
      // Only the trailer frame: flag 0x80, a 4-byte length, then the trailer's lines.
      expect(body[0]).toBe(0x80);
      const trailer = new TextDecoder().decode(body.subarray(5));
      expect(trailer).toContain("grpc-status: 3\r\n");
      expect(trailer).toContain(
        `grpc-message: ${encodeURIComponent("request is not a valid inferencecache.v1.LookupRouteRequest: tenant runs past the end of the message")}\r\n`,
      );
    });

    it("answers a gRPC-web client, errors included", async () => {
      const baseUrl = await startServer();
      const client = createClient(
        CacheIndexService,
        createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
      );
      expect((await client.getCacheState({ tenant: "acme" })).tenant).toBe("acme");
      const error = await client.reportCacheState({}).catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
      expect((error as ConnectError).rawMessage).toBe("tenant is required");
    });
  });

  describe("operator endpoints", () => {
    it("serves GET /metrics with the exposition's content type", async () => {
      const baseUrl = await startServer();
      const response = await fetch(`${baseUrl}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe(prometheusContentType);
      expect(await response.text()).toBe("cache_index_entries 3\n");
    });

    it.each([
      ["rejects", () => Promise.reject(new Error("registry is broken"))],
      [
        "throws",
        () => {
          throw new Error("registry is broken");
        },
      ],
      ["has a bad content type", async () => ({ contentType: "text/plain\n", body: "" })],
    ])(
      "answers GET /metrics with 500 and reports the error when metrics() %s",
      async (_, failing) => {
        const baseUrl = await startServer();
        metrics = failing;
        const response = await fetch(`${baseUrl}/metrics`);
        expect(response.status).toBe(500);
        expect(await response.text()).toBe("metrics are unavailable");
        expect(recorder.errors.map((entry) => entry.method)).toEqual(["GET /metrics"]);
      },
    );

    it("answers GET /healthz with 200 ok", async () => {
      const baseUrl = await startServer();
      const response = await fetch(`${baseUrl}/healthz`);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe("ok");
    });

    it("answers GET /readyz with 200 and the detail when ready", async () => {
      const baseUrl = await startServer();
      readiness = { ready: true, detail: { index: "loaded" } };
      const response = await fetch(`${baseUrl}/readyz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ ready: true, index: "loaded" });
    });

    it("answers GET /readyz with 503 and the detail when not ready", async () => {
      const baseUrl = await startServer();
      readiness = { ready: false, detail: { grpc: "not listening" } };
      const response = await fetch(`${baseUrl}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ ready: false, grpc: "not listening" });
    });

    it("answers 404 for a path it does not serve", async () => {
      const baseUrl = await startServer();
      expect((await fetch(`${baseUrl}/nope`)).status).toBe(404);
      expect((await fetch(`${baseUrl}/inferencecache.v1.CacheIndexService/Nope`)).status).toBe(404);
    });

    it("answers 405 to a method other than GET on an operator endpoint", async () => {
      const baseUrl = await startServer();
      const response = await fetch(`${baseUrl}/healthz`, { method: "POST" });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, HEAD");
    });
  });

  describe("shutdown()", () => {
    it("lets a request in flight finish, then resolves without waiting for the grace", async () => {
      const baseUrl = await startServer();
      const slowMetrics = deferred<MetricsExposition>();
      metrics = () => slowMetrics.promise;
      const inFlight = fetch(`${baseUrl}/metrics`);
      await until(() => slowMetrics.called);
      const started = performance.now();
      const shutdown = server?.shutdown(10_000);
      slowMetrics.resolve({ contentType: prometheusContentType, body: "late\n" });
      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(await response.text()).toBe("late\n");
      await shutdown;
      expect(performance.now() - started).toBeLessThan(2000);
    });

    it("resolves, after which the port refuses connections", async () => {
      const baseUrl = await startServer();
      expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
      await server?.shutdown(1000);
      await expect(fetch(`${baseUrl}/healthz`)).rejects.toThrow();
    });

    it("closes connections still busy once the grace has elapsed", async () => {
      const baseUrl = await startServer();
      const neverMetrics = deferred<MetricsExposition>();
      metrics = () => neverMetrics.promise;
      const inFlight = fetch(`${baseUrl}/metrics`);
      await until(() => neverMetrics.called);
      await server?.shutdown(100);
      await expect(inFlight).rejects.toThrow();
    });

    it("returns the same promise when called again", async () => {
      await startServer();
      const first = server?.shutdown(100);
      expect(server?.shutdown(100)).toBe(first);
      await first;
    });
  });
});

/** A promise to settle by hand, that knows whether anyone asked for it. */
function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  readonly called: boolean;
} {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  const state = { called: false };
  return {
    get promise() {
      state.called = true;
      return promise;
    },
    resolve: (value) => resolve(value),
    get called() {
      return state.called;
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
