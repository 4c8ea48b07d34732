import { execFile, execFileSync, spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Client, credentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CacheEventType,
  CacheIndexService,
  ReasonCode,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import { createGrpcClient, type GrpcClient } from "../support/grpc-client.js";
import { chainOf } from "../support/hashes.js";
import {
  MAIN_SCRIPT,
  runSidecar,
  type SidecarProcess,
  startSidecar,
} from "../support/sidecar-process.js";

/** Whether this machine lets an unprivileged user run a process as PID 1 of a new namespace. */
const canBePid1 = (() => {
  try {
    return (
      execFileSync(
        "unshare",
        ["-Urpf", process.execPath, "-e", "process.stdout.write(String(process.pid))"],
        {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
        },
      ) === "1"
    );
  } catch {
    return false;
  }
})();
const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const scope = { tenant: "acme", model: "llama-3-8b", hashScheme: "vllm-sha256_cbor-bs16" };

function prefixes(first: number, length: number) {
  return chainOf(first, length).map((prefixHash, i) => ({ prefixHash, tokenCount: (i + 1) * 16 }));
}

async function bufCurl(address: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    BUF,
    [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      ...args.slice(0, -1),
      `http://${address}${args.at(-1)}`,
    ],
    { timeout: 20_000 },
  );
  return stdout;
}

/** grpc.health.v1.Health/Check for the whole server: "SERVING" or "NOT_SERVING". */
function healthOf(address: string): Promise<string> {
  const client = new Client(address, credentials.createInsecure());
  const bytes = (b: Buffer) => b;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      bytes,
      bytes,
      Buffer.alloc(0),
      (error, response) => {
        client.close();
        if (error) reject(error);
        // HealthCheckResponse { status = 1 }: 0x08 then the enum value.
        else resolve(response?.[1] === 1 ? "SERVING" : "NOT_SERVING");
      },
    );
  });
}

/** A loopback port something else listens on, and how to let it go. */
async function takenPort(): Promise<{ port: number; release: () => void }> {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  return { port: (blocker.address() as { port: number }).port, release: () => blocker.close() };
}

/** The JSON lines a process printed. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function codeOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (error) {
    return (error as { code: number }).code;
  }
  throw new Error("expected the call to fail");
}

describe("the sidecar process", () => {
  let sidecar: SidecarProcess;
  let client: GrpcClient<typeof CacheIndexService>;

  beforeAll(async () => {
    sidecar = await startSidecar(["--max-message-bytes", "65536"]);
    client = createGrpcClient(CacheIndexService, sidecar.grpcAddress);
  });

  afterAll(async () => {
    client?.close();
    await sidecar?.stop();
  });

  it("logs one startup line with its effective configuration", () => {
    const startup = sidecar.logs.find((line) => line.msg === "inference-cache-index started");
    expect(startup).toMatchObject({
      level: "info",
      service: "inference-cache-index",
      config: { ttlSeconds: 120, maxEntries: 1_000_000, maxMessageBytes: 65536, logLevel: "info" },
    });
  });

  it("reports ready on /readyz and alive on /healthz", async () => {
    const ready = await fetch(`${sidecar.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true });
    expect((await fetch(`${sidecar.httpUrl}/healthz`)).status).toBe(200);
  });

  it("answers a report, a lookup and a state query over gRPC", async () => {
    await client.reportCacheState({ ...scope, replicaId: "pod-a", prefixes: prefixes(1, 3) });
    await client.reportCacheState({ ...scope, replicaId: "pod-b", prefixes: prefixes(1, 1) });
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 4) });
    expect(answer.reasonCode).toBe(ReasonCode.PREFIX_MATCH);
    expect(answer.hints.map((h) => [h.replicaId, h.matchedBlocks, h.matchedTokens])).toEqual([
      ["pod-a", 3, 48],
      ["pod-b", 1, 16],
    ]);
    const state = await client.getCacheState({ tenant: scope.tenant, model: scope.model });
    expect(state.totalEntries).toBe(4n);
  });

  it("lists the four methods through reflection and calls LookupRoute with buf curl", async () => {
    const methods = (await bufCurl(sidecar.grpcAddress, "--list-methods", "")).split("\n");
    expect(methods).toEqual(
      expect.arrayContaining([
        "inferencecache.v1.CacheIndexService/ReportCacheState",
        "inferencecache.v1.CacheIndexService/PublishEvent",
        "inferencecache.v1.CacheIndexService/LookupRoute",
        "inferencecache.v1.CacheIndexService/GetCacheState",
      ]),
    );
    await client.reportCacheState({ ...scope, replicaId: "pod-curl", prefixes: prefixes(500, 2) });
    const body = JSON.stringify({
      ...scope,
      prefixHashes: chainOf(500, 2).map((h) => Buffer.from(h).toString("base64")),
    });
    const answer = JSON.parse(
      await bufCurl(
        sidecar.grpcAddress,
        "-d",
        body,
        "/inferencecache.v1.CacheIndexService/LookupRoute",
      ),
    );
    expect(answer).toMatchObject({
      reasonCode: "REASON_CODE_PREFIX_MATCH",
      hints: [{ replicaId: "pod-curl", matchedBlocks: 2, matchedTokens: 32 }],
    });
  });

  it("serves the same index with Connect JSON on the HTTP port", async () => {
    const response = await fetch(
      `${sidecar.httpUrl}/inferencecache.v1.CacheIndexService/LookupRoute`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          ...scope,
          prefixHashes: chainOf(1, 3).map((h) => Buffer.from(h).toString("base64")),
        }),
      },
    );
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { hints: { replicaId: string }[] };
    expect(answer.hints[0]?.replicaId).toBe("pod-a");
  });

  it("answers an oversized message with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const huge = { ...scope, replicaId: "pod-big", prefixes: prefixes(10_000, 5_000) };
    expect(await codeOf(client.reportCacheState(huge))).toBe(status.RESOURCE_EXHAUSTED);
    const state = await client.getCacheState({ tenant: scope.tenant, model: scope.model });
    expect(state.replicas.map((r) => r.replicaId)).not.toContain("pod-big");
  });

  it("survives bad input of every kind and still answers correctly", async () => {
    expect(await codeOf(client.reportCacheState({ ...scope, tenant: "" }))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(
      await codeOf(
        client.publishEvent({
          ...scope,
          replicaId: "pod-a",
          events: [{ type: CacheEventType.REPLICA_UPDATED, stats: { kvCacheUsage: Number.NaN } }],
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.sendBytes("LookupRoute", new Uint8Array([0xff, 0xff, 0xff])))).toBe(
      status.INVALID_ARGUMENT,
    );
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 3) });
    expect(answer.hints[0]).toMatchObject({ replicaId: "pod-a", matchedBlocks: 3 });
    expect(sidecar.child.exitCode).toBeNull();
  });

  it("exposes the index's metrics on /metrics", async () => {
    const text = await (await fetch(`${sidecar.httpUrl}/metrics`)).text();
    expect(text).toMatch(/^inferencecache_index_entries\{model="llama-3-8b"\} [1-9]/m);
    expect(text).toMatch(
      /^inferencecache_lookup_route_calls_total\{model="llama-3-8b",reason_code="PREFIX_MATCH",hint_used="true"\} [1-9]/m,
    );
    expect(text).toContain("inferencecache_lookup_route_latency_seconds_bucket");
    expect(text).toContain("# TYPE inferencecache_unexpected_errors_total counter");
    expect(text).toContain("process_cpu_seconds_total");
  });
});

describe("the sidecar's lifecycle", () => {
  it("drains on SIGTERM: not ready but still serving for the delay, then it exits 0", async () => {
    const sidecar = await startSidecar(["--shutdown-delay-seconds", "1.5"]);
    const client = createGrpcClient(CacheIndexService, sidecar.grpcAddress);
    await client.reportCacheState({ ...scope, replicaId: "pod-a", prefixes: prefixes(1, 1) });
    expect(await healthOf(sidecar.grpcAddress)).toBe("SERVING");
    const stopped = sidecar.stop("SIGTERM");
    await vi.waitFor(
      async () => expect((await fetch(`${sidecar.httpUrl}/readyz`)).status).toBe(503),
      {
        timeout: 1_000,
        interval: 20,
      },
    );
    expect(await healthOf(sidecar.grpcAddress)).toBe("NOT_SERVING");
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 1) });
    expect(answer.hints.map((h) => h.replicaId)).toEqual(["pod-a"]);
    client.close();
    expect(await stopped).toBe(0);
    expect(sidecar.logs.map((line) => line.msg)).toContain("stopped");
  });

  it("exits 1 and leaves nothing listening when a port cannot be bound", async () => {
    const { port, release } = await takenPort();
    try {
      const result = await runSidecar([
        ...["--grpc-address", "127.0.0.1:0", "--http-address", `127.0.0.1:${port}`],
      ]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain("could not listen");
    } finally {
      release();
    }
  });

  it("names each port it could not bind, when both are taken", async () => {
    const taken = [await takenPort(), await takenPort()];
    const [grpc, http] = taken.map(({ port }) => `127.0.0.1:${port}`);
    try {
      const result = await runSidecar([
        ...["--grpc-address", grpc as string, "--http-address", http as string],
      ]);
      expect(result.code).toBe(1);
      const failures = jsonLines(result.stdout).filter((line) => line.msg === "could not listen");
      expect(failures.map((line) => [line.port, line.address])).toEqual([
        ["grpc", grpc],
        ["http", http],
      ]);
    } finally {
      for (const { release } of taken) release();
    }
  });

  it("logs gRPC's own complaint about a port it cannot bind as a JSON line too", async () => {
    const { port, release } = await takenPort();
    try {
      const result = await runSidecar([
        ...["--grpc-address", `127.0.0.1:${port}`, "--http-address", "127.0.0.1:0"],
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe("");
      const lines = jsonLines(result.stdout);
      expect(lines).toContainEqual(expect.objectContaining({ component: "grpc-js" }));
      expect(lines).toContainEqual(expect.objectContaining({ msg: "could not listen" }));
    } finally {
      release();
    }
  });

  it("logs and keeps serving on SIGHUP when it has no sources file to re-read", async () => {
    const sidecar = await startSidecar();
    const client = createGrpcClient(CacheIndexService, sidecar.grpcAddress);
    try {
      await client.reportCacheState({ ...scope, replicaId: "pod-a", prefixes: prefixes(1, 1) });
      sidecar.child.kill("SIGHUP");
      await vi.waitFor(
        () =>
          expect(sidecar.logs).toContainEqual(
            expect.objectContaining({ level: "info", trigger: "SIGHUP" }),
          ),
        { timeout: 2_000, interval: 20 },
      );
      const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 1) });
      expect(answer.hints.map((h) => h.replicaId)).toEqual(["pod-a"]);
      expect(sidecar.child.exitCode).toBeNull();
    } finally {
      client.close();
    }
    expect(await sidecar.stop("SIGTERM")).toBe(0);
  });

  it("a second signal during the drain ends it at once, by the signal, saying so", async () => {
    const sidecar = await startSidecar(["--shutdown-delay-seconds", "60"]);
    try {
      const stopped = sidecar.stop("SIGTERM");
      await vi.waitFor(
        () =>
          expect(sidecar.logs.map((line) => line.msg)).toContain(
            "draining: readiness and health are down",
          ),
        { timeout: 2_000, interval: 20 },
      );
      sidecar.child.kill("SIGINT");
      const code = await Promise.race([
        stopped,
        new Promise((resolve) => setTimeout(() => resolve("still running"), 5_000)),
      ]);
      // By the signal, or, should exit() get there first, with its status: 130 either way to a shell.
      expect([
        [null, "SIGINT"],
        [130, null],
      ]).toContainEqual([code, sidecar.child.signalCode]);
      expect(sidecar.logs).toContainEqual(
        expect.objectContaining({
          level: "error",
          signal: "SIGINT",
          msg: "a second signal: exiting without finishing the drain",
        }),
      );
    } finally {
      if (sidecar.child.exitCode === null && sidecar.child.signalCode === null) {
        sidecar.child.kill("SIGKILL");
      }
    }
  });

  it.skipIf(!canBePid1)(
    "a second signal ends it as PID 1 too, where the kernel ignores a re-raised signal",
    async () => {
      // unshare runs it as PID 1 of a new PID namespace, as a container's entry point is.
      const child = spawn(
        "unshare",
        ["-Urpf", process.execPath, MAIN_SCRIPT]
          .concat(["--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"])
          .concat(["--shutdown-delay-seconds", "60"]),
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      let sidecarPid: number | undefined;
      try {
        await vi.waitFor(() => expect(stdout).toContain("inference-cache-index started"), {
          timeout: 10_000,
          interval: 20,
        });
        const pid = child.pid as number;
        sidecarPid = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim());
        process.kill(sidecarPid, "SIGTERM");
        await vi.waitFor(() => expect(stdout).toContain("draining"), { timeout: 2_000 });
        process.kill(sidecarPid, "SIGINT");
        const code = await Promise.race([
          exited,
          new Promise((resolve) => setTimeout(() => resolve("still running"), 5_000)),
        ]);
        expect(code).toBe(130); // unshare passes on its child's status: 128 + SIGINT
      } finally {
        if (sidecarPid !== undefined && child.exitCode === null) {
          try {
            process.kill(sidecarPid, "SIGKILL");
          } catch {}
        }
      }
    },
  );

  it("ends on SIGTERM while its start-up read of the sources file is stuck", async () => {
    // A FIFO whose writer sends nothing: the start-up read waits on it, in a libuv thread that
    // process.exit() would wait for.
    const dir = mkdtempSync(join(tmpdir(), "sources-"));
    const fifo = join(dir, "sources.json");
    let writer: number | undefined;
    await promisify(execFile)("mkfifo", [fifo]);
    const child = spawn(
      process.execPath,
      [MAIN_SCRIPT, ...["--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"]].concat([
        "--kv-events-config",
        fifo,
      ]),
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
      // Opening the write end without blocking succeeds once the sidecar has opened the read end.
      await vi.waitFor(
        () => {
          writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        },
        { timeout: 5_000, interval: 20 },
      );
      await new Promise((resolve) => setTimeout(resolve, 200)); // its read() is waiting by now
      child.kill("SIGTERM");
      const ended = await Promise.race([
        closed.then(() => "ended"),
        new Promise((resolve) => setTimeout(() => resolve("still running"), 5_000)),
      ]);
      expect(ended).toBe("ended");
      expect([
        [null, "SIGTERM"],
        [143, null],
      ]).toContainEqual([child.exitCode, child.signalCode]);
      expect(stdout).toContain("stopped before start-up finished");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      if (writer !== undefined) closeSync(writer);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answers RESOURCE_EXHAUSTED, naming the limit, to a write past --max-replicas", async () => {
    const sidecar = await startSidecar(["--max-replicas", "1"]);
    const client = createGrpcClient(CacheIndexService, sidecar.grpcAddress);
    try {
      await client.reportCacheState({ ...scope, replicaId: "pod-a", prefixes: prefixes(1, 1) });
      const refused = await client
        .reportCacheState({ ...scope, replicaId: "pod-b", prefixes: prefixes(1, 1) })
        .then(
          () => undefined,
          (error: { code: number; details: string }) => error,
        );
      expect(refused?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused?.details).toContain("--max-replicas");
      const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 1) });
      expect(answer.hints.map((h) => h.replicaId)).toEqual(["pod-a"]);
    } finally {
      client.close();
    }
    expect(await sidecar.stop("SIGTERM")).toBe(0);
  });

  it("exits 0 on SIGINT too", async () => {
    const sidecar = await startSidecar();
    expect(await sidecar.stop("SIGINT")).toBe(0);
  });

  it("falls back to the default for a non-positive ttl, with a warning", async () => {
    const sidecar = await startSidecar(["--ttl-seconds", "0", "--sweep-interval-seconds", "-1"]);
    try {
      const warnings = sidecar.logs.filter((line) => line.level === "warn").map((line) => line.msg);
      expect(warnings).toEqual([
        "--ttl-seconds must be positive, got 0; using the default 120",
        "--sweep-interval-seconds must be positive, got -1; using the default 5",
      ]);
      const startup = sidecar.logs.find((line) => line.msg === "inference-cache-index started");
      expect(startup).toMatchObject({ index: { ttlMs: 120_000 } });
    } finally {
      await sidecar.stop();
    }
  });

  it.each([
    [["--max-entries", "abc"], {}, "--max-entries"],
    [["--grpc-address", "nowhere"], {}, "--grpc-address"],
    [[], { INFERENCECACHE_TTL_SECONDS: "soon" }, "INFERENCECACHE_TTL_SECONDS"],
    [["--no-such-flag"], {}, "--no-such-flag"],
  ])("exits 2 naming the setting for %j %j", async (args, env, setting) => {
    const result = await runSidecar(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(setting);
  });

  it("prints every setting with --help and exits 0", async () => {
    const result = await runSidecar(["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--ttl-seconds");
    expect(result.stdout).toContain("INFERENCECACHE_MAX_ENTRIES");
  });
});
