import { execFile } from "node:child_process";
import { connect } from "node:http2";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { Client, credentials, type ServiceError, status } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  CacheIndexService,
  LookupRouteRequestSchema,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import {
  createReflectionCodec,
  type GrpcMethodCodec,
} from "../../src/transport/grpc-method-codec.js";
import { createGrpcServer, type GrpcServer } from "../../src/transport/grpc-server.js";
import { createGrpcClient, type GrpcClient } from "../support/grpc-client.js";
import { createErrorRecorder, fakeCacheIndex, secretFailure } from "./fake-cache-index.js";

const bufBinary = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

describe("createGrpcServer()", () => {
  let server: GrpcServer | undefined;
  let client: GrpcClient<typeof CacheIndexService> | undefined;
  const recorder = createErrorRecorder();

  afterEach(async () => {
    client?.close();
    await server?.shutdown(0);
    client = undefined;
    server = undefined;
    recorder.errors.length = 0;
  });

  async function startServer(
    maxMessageBytes?: number,
    codecs?: readonly GrpcMethodCodec[],
  ): Promise<string> {
    server = createGrpcServer({
      service: CacheIndexService,
      impl: fakeCacheIndex,
      port: 0,
      onUnexpectedError: recorder.onUnexpectedError,
      ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
      ...(codecs === undefined ? {} : { codecs }),
    });
    const { port } = await server.start();
    const address = `127.0.0.1:${port}`;
    client = createGrpcClient(CacheIndexService, address);
    return address;
  }

  describe("unary calls", () => {
    it("answers with the implementation's response", async () => {
      await startServer();
      const response = await client?.lookupRoute({
        tenant: "acme",
        model: "llama",
        prefixHashes: [new Uint8Array([1]), new Uint8Array([2])],
      });
      expect(response?.detail).toBe("acme/llama");
      expect(response?.hints.map((hint) => hint.replicaId)).toEqual(["replica-0", "replica-1"]);
    });

    it("sends a ConnectError's code and message as the status", async () => {
      await startServer();
      const error = await rejectionOf(client?.reportCacheState({ tenant: "" }));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe("tenant is required");
    });

    it("answers INTERNAL with a generic message when a handler throws anything else", async () => {
      await startServer();
      const error = await rejectionOf(client?.publishEvent({ tenant: "acme" }));
      expect(error.code).toBe(status.INTERNAL);
      expect(error.details).toBe("internal error");
      expect(error.details).not.toContain("hunter2");
    });

    it("reports an unexpected error to onUnexpectedError with the method's full name", async () => {
      await startServer();
      await rejectionOf(client?.publishEvent({ tenant: "acme" }));
      expect(recorder.errors).toEqual([
        {
          method: "inferencecache.v1.CacheIndexService/PublishEvent",
          error: expect.objectContaining({ message: secretFailure }),
        },
      ]);
    });

    it("answers INVALID_ARGUMENT to a request that is not valid protobuf", async () => {
      await startServer();
      // Field 1, length-delimited, claims 5 bytes and carries 1.
      const error = await rejectionOf(
        client?.sendBytes("LookupRoute", new Uint8Array([0x0a, 0x05, 0x61])),
      );
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe(
        "request is not a valid inferencecache.v1.LookupRouteRequest: tenant runs past the end of the message",
      );
      expect(recorder.errors).toEqual([]);
    });

    it("names the field, by its path, of any method's request that is not valid protobuf", async () => {
      await startServer();
      // prefixes[0] (field 5) holding a prefix_hash (field 1) that claims 9 bytes and carries 1.
      const error = await rejectionOf(
        client?.sendBytes("ReportCacheState", Uint8Array.of(0x2a, 0x03, 0x0a, 0x09, 0x01)),
      );
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe(
        "request is not a valid inferencecache.v1.ReportCacheStateRequest: prefixes[0].prefix_hash runs past the end of the message",
      );
    });

    it("answers RESOURCE_EXHAUSTED to a request over maxMessageBytes", async () => {
      await startServer(1024);
      const error = await rejectionOf(client?.lookupRoute({ tenant: "a".repeat(2000) }));
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    });

    it("answers RESOURCE_EXHAUSTED when the response would be over maxMessageBytes", async () => {
      await startServer(1024);
      // 100 one-byte hashes make a ~300-byte request and a hint each: a ~1.5 KiB response.
      const prefixHashes = Array.from({ length: 100 }, (_, i) => new Uint8Array([i]));
      const error = await rejectionOf(client?.lookupRoute({ tenant: "acme", prefixHashes }));
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    });

    it("keeps serving after failed calls", async () => {
      await startServer();
      await rejectionOf(client?.sendBytes("LookupRoute", new Uint8Array([0xff])));
      await rejectionOf(client?.publishEvent({}));
      const response = await client?.getCacheState({ tenant: "acme", model: "llama" });
      expect(response?.tenant).toBe("acme");
    });
  });

  describe("codecs", () => {
    const request = toBinary(
      LookupRouteRequestSchema,
      create(LookupRouteRequestSchema, {
        tenant: "acm\u00e9",
        model: "llama-\ud83e\udd99",
        hashScheme: "vllm-sha256_cbor-bs16",
        prefixHashes: [new Uint8Array([1, 2]), new Uint8Array(64).fill(7), new Uint8Array([3])],
        candidateReplicaIds: ["replica-1", "replica-2"],
        maxHints: 300,
      }),
    );

    async function lookupRouteBytes(
      codecs: readonly GrpcMethodCodec[] | undefined,
      bytes: Uint8Array,
    ): Promise<Uint8Array> {
      await startServer(undefined, codecs);
      try {
        return await (client as GrpcClient<typeof CacheIndexService>).sendBytes(
          "LookupRoute",
          bytes,
        );
      } finally {
        client?.close();
        await server?.shutdown(0);
      }
    }

    it("answers LookupRoute byte for byte as protobuf-es alone would", async () => {
      const byDefault = await lookupRouteBytes(undefined, request);
      const byProtobufEs = await lookupRouteBytes([], request);
      expect(byDefault.length).toBeGreaterThan(0);
      expect(Buffer.from(byDefault).toString("hex")).toBe(
        Buffer.from(byProtobufEs).toString("hex"),
      );
    });

    it("answers INVALID_ARGUMENT to a LookupRoute whose tenant is not UTF-8", async () => {
      await startServer();
      const error = await rejectionOf(
        client?.sendBytes("LookupRoute", new Uint8Array([0x0a, 0x02, 0xc3, 0x28])),
      );
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe(
        "request is not a valid inferencecache.v1.LookupRouteRequest: tenant is not valid UTF-8",
      );
    });

    it("rejects a LookupRoute field sent with the wrong wire type, which protobuf-es would misread", async () => {
      // Field 1 (tenant, a string) as the varint 0: protobuf-es reads it as an empty string.
      const mistyped = new Uint8Array([0x08, 0x00]);
      await expect(lookupRouteBytes([], mistyped)).resolves.toBeDefined();
      const error = await rejectionOf(lookupRouteBytes(undefined, mistyped));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe(
        "request is not a valid inferencecache.v1.LookupRouteRequest: tenant has wire type 0, which its type does not use",
      );
      // Read as protobuf-es would, the same tenant as a length runs past the end: the codec that
      // refused the bytes says why it did.
      const misread = await rejectionOf(lookupRouteBytes(undefined, Uint8Array.of(0x08, 0x05)));
      expect(misread.details).toBe(error.details);
    });

    it("serves a method with the codec given for it", async () => {
      const calls: string[] = [];
      const reflection = createReflectionCodec(CacheIndexService.method.getCacheState);
      const counting: GrpcMethodCodec = {
        method: reflection.method,
        decodeRequest(bytes) {
          calls.push("decode");
          return reflection.decodeRequest(bytes);
        },
        encodeResponse(response) {
          calls.push("encode");
          return reflection.encodeResponse(response);
        },
      };
      await startServer(undefined, [counting]);
      const response = await client?.getCacheState({ tenant: "acme", model: "llama" });
      expect(response?.tenant).toBe("acme");
      expect(calls).toEqual(["decode", "encode"]);
    });
  });

  // The gRPC transport sends ConnectError.code as the status number unchanged.
  it.each([
    ["Canceled", "CANCELLED"],
    ["Unknown", "UNKNOWN"],
    ["InvalidArgument", "INVALID_ARGUMENT"],
    ["DeadlineExceeded", "DEADLINE_EXCEEDED"],
    ["NotFound", "NOT_FOUND"],
    ["AlreadyExists", "ALREADY_EXISTS"],
    ["PermissionDenied", "PERMISSION_DENIED"],
    ["ResourceExhausted", "RESOURCE_EXHAUSTED"],
    ["FailedPrecondition", "FAILED_PRECONDITION"],
    ["Aborted", "ABORTED"],
    ["OutOfRange", "OUT_OF_RANGE"],
    ["Unimplemented", "UNIMPLEMENTED"],
    ["Internal", "INTERNAL"],
    ["Unavailable", "UNAVAILABLE"],
    ["DataLoss", "DATA_LOSS"],
    ["Unauthenticated", "UNAUTHENTICATED"],
  ] as const)("relies on Connect's Code.%s being gRPC's status %s", (connectCode, grpcStatus) => {
    expect(Code[connectCode]).toBe(status[grpcStatus]);
  });

  describe("health", () => {
    it.each(["", "inferencecache.v1.CacheIndexService"])(
      "reports %j NOT_SERVING until setServing(true), then SERVING",
      async (name) => {
        const address = await startServer();
        expect(await checkHealth(address, name)).toBe("NOT_SERVING");
        server?.setServing(true);
        expect(await checkHealth(address, name)).toBe("SERVING");
      },
    );

    it("reports NOT_SERVING again after setServing(false)", async () => {
      const address = await startServer();
      server?.setServing(true);
      server?.setServing(false);
      expect(await checkHealth(address, "")).toBe("NOT_SERVING");
    });

    it("tells watchers NOT_SERVING as soon as shutdown starts", async () => {
      const address = await startServer();
      server?.setServing(true);
      const watch = watchHealth(address, "");
      await watch.next(); // SERVING
      const shutdown = server?.shutdown(50);
      expect(await watch.next()).toBe("NOT_SERVING");
      await shutdown;
      watch.close();
    });
  });

  describe("reflection", () => {
    it.each(["grpc-v1", "grpc-v1alpha"])(
      "lists the service's and health's methods to buf curl over %s",
      async (reflectProtocol) => {
        const address = await startServer();
        const listed = await bufCurl(address, [
          "--list-methods",
          "--reflect-protocol",
          reflectProtocol,
        ]);
        expect(listed.split("\n").filter(Boolean).sort()).toEqual([
          "grpc.health.v1.Health/Check",
          "grpc.health.v1.Health/List",
          "grpc.health.v1.Health/Watch",
          "inferencecache.v1.CacheIndexService/GetCacheState",
          "inferencecache.v1.CacheIndexService/LookupRoute",
          "inferencecache.v1.CacheIndexService/PublishEvent",
          "inferencecache.v1.CacheIndexService/ReportCacheState",
        ]);
      },
    );

    it("describes the service's messages well enough for buf curl to call it", async () => {
      const address = await startServer();
      const output = await bufCurl(address, [
        "--data",
        '{"tenant":"acme","model":"llama"}',
        `http://${address}/inferencecache.v1.CacheIndexService/GetCacheState`,
      ]);
      expect(JSON.parse(output)).toEqual({ tenant: "acme", model: "llama" });
    });

    it("describes health's messages well enough for buf curl to call it", async () => {
      const address = await startServer();
      server?.setServing(true);
      const output = await bufCurl(address, [
        "--data",
        '{"service":"inferencecache.v1.CacheIndexService"}',
        `http://${address}/grpc.health.v1.Health/Check`,
      ]);
      expect(JSON.parse(output)).toEqual({ status: "SERVING" });
    });
  });

  describe("shutdown()", () => {
    it("resolves, after which the port refuses calls", async () => {
      const address = await startServer();
      await server?.shutdown(1000);
      const fresh = createGrpcClient(CacheIndexService, address);
      try {
        const error = await rejectionOf(fresh.getCacheState({ tenant: "acme" }));
        expect(error.code).toBe(status.UNAVAILABLE);
      } finally {
        fresh.close();
      }
    });

    it("closes calls still open once the grace has elapsed", async () => {
      const address = await startServer();
      // A call whose request never finishes arriving: 2 of the 10 bytes its frame announces.
      const { session, closed } = await openRawCall(
        address,
        "/inferencecache.v1.CacheIndexService/GetCacheState",
        Uint8Array.of(0, 0, 0, 0, 10, 0x0a, 0x04),
      );
      const started = performance.now();
      await server?.shutdown(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(150);
      await closed;
      session.destroy();
    });

    it("ends a health watch whose request arrives after shutdown began", async () => {
      const address = await startServer();
      const { session, stream, closed } = await openRawCall(
        address,
        "/grpc.health.v1.Health/Watch",
      );
      const started = performance.now();
      const stopped = server?.shutdown(5_000);
      stream.end(Uint8Array.of(0, 0, 0, 0, 0)); // HealthCheckRequest{service: ""}
      await stopped;
      expect(performance.now() - started).toBeLessThan(2_000);
      await closed;
      session.destroy();
    });

    it("ends health watches once they are told NOT_SERVING, so they do not hold it up", async () => {
      const address = await startServer();
      server?.setServing(true);
      const watch = watchHealth(address, "");
      await watch.next(); // SERVING
      server?.setServing(false); // as the sidecar's drain does, before shutdown
      const started = performance.now();
      await server?.shutdown(10_000);
      expect(performance.now() - started).toBeLessThan(2_000);
      await expect(watch.ended).resolves.toBe("end");
      expect(watch.unread()).toEqual(["NOT_SERVING"]); // told once
      watch.close();
    });

    it("returns the same promise when called again", async () => {
      await startServer();
      const first = server?.shutdown(100);
      expect(server?.shutdown(100)).toBe(first);
      await first;
    });
  });
});

async function rejectionOf(call: Promise<unknown> | undefined): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error("expected the call to fail");
}

async function bufCurl(address: string, args: string[]): Promise<string> {
  const url = args.some((arg) => arg.startsWith("http://")) ? [] : [`http://${address}`];
  const { stdout } = await promisify(execFile)(
    bufBinary,
    ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args, ...url],
    { timeout: 20_000 },
  );
  return stdout;
}

// grpc-health-check ships the health service as a proto-loader definition whose serializers take
// and return plain objects with enums as strings: { service: "" } in, { status: "SERVING" } out.
const healthCheck = healthService.Check;
const healthWatch = healthService.Watch;

function checkHealth(address: string, name: string): Promise<string> {
  const channel = new Client(address, credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    if (healthCheck === undefined) {
      throw new Error("grpc-health-check has no Check method");
    }
    channel.makeUnaryRequest(
      healthCheck.path,
      healthCheck.requestSerialize,
      healthCheck.responseDeserialize,
      { service: name },
      (error, response) => {
        if (error) {
          reject(error);
        } else {
          resolve((response as { status: string }).status);
        }
      },
    );
  }).finally(() => channel.close());
}

/**
 * Opens a gRPC call over a raw HTTP/2 stream, writing `first` (if given) and no more, and resolves
 * once the server has had time to take the stream. `closed` settles when the stream closes.
 */
async function openRawCall(address: string, path: string, first?: Uint8Array) {
  const session = connect(`http://${address}`);
  session.on("error", () => {}); // forceShutdown() ends the session with an error code
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => {});
  stream.on("data", () => {});
  const closed = new Promise((resolve) => stream.once("close", resolve));
  if (first !== undefined) stream.write(first);
  await new Promise((resolve) => stream.once("ready", resolve));
  await new Promise((resolve) => setTimeout(resolve, 50)); // the server has the stream
  return { session, stream, closed };
}

/** Streams health statuses: `next()` resolves with the next one, `ended` once the stream ends. */
function watchHealth(
  address: string,
  name: string,
): { next(): Promise<string>; unread(): string[]; ended: Promise<unknown>; close(): void } {
  if (healthWatch === undefined) {
    throw new Error("grpc-health-check has no Watch method");
  }
  const channel = new Client(address, credentials.createInsecure());
  const call = channel.makeServerStreamRequest(
    healthWatch.path,
    healthWatch.requestSerialize,
    healthWatch.responseDeserialize,
    { service: name },
  );
  const received: string[] = [];
  const waiting: Array<(status: string) => void> = [];
  call.on("data", (response: { status: string }) => {
    const waiter = waiting.shift();
    if (waiter) {
      waiter(response.status);
    } else {
      received.push(response.status);
    }
  });
  const ended = new Promise<unknown>((resolve) => {
    call.on("error", resolve);
    call.on("end", () => resolve("end"));
  });
  return {
    next: () => {
      const status = received.shift();
      return status === undefined
        ? new Promise((resolve) => waiting.push(resolve))
        : Promise.resolve(status);
    },
    unread: () => received.splice(0),
    ended,
    close: () => {
      call.cancel();
      channel.close();
    },
  };
}
