import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { encodeMsgpack, MsgpackMap } from "../../bench/msgpack-encoder.js";
import { CacheIndexService, StreamConnection } from "../../gen/inferencecache/v1/cache_index_pb.js";
import { batchPayload, blockRemoved, blockStored, FakeEngine } from "../kv-stream/fake-engine.js";
import { createGrpcClient, type GrpcClient } from "../support/grpc-client.js";
import { chainOf } from "../support/hashes.js";
import { runSidecar, type SidecarProcess, startSidecar } from "../support/sidecar-process.js";
import { waitFor } from "../support/wait-for.js";

const scope = { tenant: "acme", model: "llama-3-8b", hashScheme: "vllm-sha256_cbor-bs16" };

function sourcesJson(
  ...sources: {
    name: string;
    endpoint: string;
    replayEndpoint?: string | undefined;
    replicaId?: string;
  }[]
): string {
  return JSON.stringify({ sources: sources.map((source) => ({ ...scope, ...source })) });
}

interface ReadyBody {
  ready: boolean;
  kvEventStreams: { source: string; endpoint: string; connection: string }[];
}

async function readyz(sidecar: SidecarProcess): Promise<ReadyBody> {
  return (await (await fetch(`${sidecar.httpUrl}/readyz`)).json()) as ReadyBody;
}

describe("the sidecar reading engines' KV events", () => {
  let dir: string;
  let file: string;
  let sidecar: SidecarProcess | undefined;
  let client: GrpcClient<typeof CacheIndexService> | undefined;
  const engines: FakeEngine[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kv-events-e2e-"));
    file = join(dir, "engines.json");
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    await sidecar?.stop();
    sidecar = undefined;
    for (const engine of engines.splice(0)) engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function startEngine(options: { replay?: boolean } = {}): Promise<FakeEngine> {
    const engine = await FakeEngine.start(options);
    engines.push(engine);
    return engine;
  }

  /**
   * Starts the sidecar reading `engine` as source "pod-a" (replica "pod-a/dp0" for rank 0) and
   * resolves once the engine has its subscription. The TTL is shorter than the tests: entries that
   * outlive it are kept alive by the stream.
   */
  async function startReading(engine: FakeEngine, args: string[] = []): Promise<void> {
    await writeFile(
      file,
      sourcesJson({
        name: "pod-a",
        replicaId: "pod-a",
        endpoint: engine.endpoint,
        replayEndpoint: engine.replayEndpoint,
      }),
    );
    sidecar = await startSidecar(["--kv-events-config", file, "--ttl-seconds", "1", ...args]);
    client = createGrpcClient(CacheIndexService, sidecar.grpcAddress);
    await engine.waitForSubscriber();
  }

  /** What a lookup of blocks `first .. first + length - 1` hints: [replica, blocks, tokens]. */
  async function hintsFor(first: number, length: number): Promise<[string, number, number][]> {
    const answer = await (client as GrpcClient<typeof CacheIndexService>).lookupRoute({
      ...scope,
      prefixHashes: chainOf(first, length),
    });
    return answer.hints.map((h) => [h.replicaId, h.matchedBlocks, h.matchedTokens]);
  }

  /** Waits until a lookup hints exactly `expected`. */
  async function expectHints(first: number, length: number, expected: [string, number, number][]) {
    await vi.waitFor(async () => expect(await hintsFor(first, length)).toEqual(expected), {
      timeout: 5_000,
      interval: 20,
    });
  }

  const stored = (first: number, length: number, parent: number | null = null) =>
    blockStored(
      chainOf(first, length).map((hash) => Buffer.from(hash).readBigUInt64BE(0)),
      parent === null ? null : BigInt(parent),
    );

  it("exits 2 naming the problem when the sources file is invalid at start", async () => {
    await writeFile(file, JSON.stringify({ sources: [{ ...scope }] }));
    const { code, stderr } = await runSidecar(["--kv-events-config", file]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      `inference-cache-index: --kv-events-config: ${file}: sources[0].endpoint is required\n`,
    );
  });

  it("exits 2 when the sources file is missing", async () => {
    const { code, stderr } = await runSidecar([], {
      INFERENCECACHE_KV_EVENTS_CONFIG: join(dir, "missing.json"),
    });
    expect(code).toBe(2);
    expect(stderr).toContain(`cannot read ${join(dir, "missing.json")}: ENOENT`);
  });

  it("is ready without waiting for engines, and shows each stream's connection in /readyz", async () => {
    const engine = await startEngine();
    await writeFile(
      file,
      sourcesJson(
        { name: "up", endpoint: engine.endpoint },
        // Nothing listens on port 9 (discard) on loopback: this engine never answers.
        { name: "down", endpoint: "tcp://127.0.0.1:9" },
      ),
    );
    sidecar = await startSidecar(["--kv-events-config", file]);
    const running = sidecar;
    await engine.waitForSubscriber();
    await waitFor(
      async () => (await readyz(running)).kvEventStreams[0]?.connection === "connected",
      "the stream to connect",
    );
    expect(await readyz(running)).toEqual({
      ready: true,
      phase: "serving",
      index: "in-memory",
      kvEventStreams: [
        { source: "up", endpoint: engine.endpoint, connection: "connected" },
        { source: "down", endpoint: "tcp://127.0.0.1:9", connection: "connecting" },
      ],
    });
  });

  it("adds engines on SIGHUP, clears those removed, and keeps them when the file turns invalid", async () => {
    const first = await startEngine();
    const second = await startEngine();
    await writeFile(
      file,
      sourcesJson({ name: "first", replicaId: "first", endpoint: first.endpoint }),
    );
    sidecar = await startSidecar(["--kv-events-config", file]);
    const running = sidecar;
    client = createGrpcClient(CacheIndexService, running.grpcAddress);
    await first.waitForSubscriber();
    await first.publish(0, batchPayload(1, [stored(1, 2)], 0));
    await expectHints(1, 2, [["first/dp0", 2, 32]]);

    await writeFile(file, sourcesJson({ name: "second", endpoint: second.endpoint }));
    running.child.kill("SIGHUP");
    await second.waitForSubscriber();
    // A source that left the file is cleared from the index.
    await expectHints(1, 2, []);
    // The file is also watched: only the lines of SIGHUP's reloads are asserted on.
    const afterSighup = (msg: string) =>
      running.logs.filter((line) => line.msg === msg && line.trigger === "SIGHUP");
    await waitFor(() => afterSighup("KV-event sources loaded").length === 1, "the reload");
    expect(afterSighup("KV-event sources loaded")[0]).toMatchObject({
      trigger: "SIGHUP",
      added: ["second"],
      removed: ["first"],
      changed: [],
      unchanged: [],
    });
    expect((await readyz(running)).kvEventStreams.map((s) => s.source)).toEqual(["second"]);

    await writeFile(file, "{ not json");
    running.child.kill("SIGHUP");
    const invalid = "KV-event sources file is invalid; the running streams are kept";
    await waitFor(() => afterSighup(invalid).length === 1, "the invalid file's log line");
    expect(afterSighup(invalid)[0]).toMatchObject({ level: "error", file });
    expect((await readyz(running)).kvEventStreams.map((s) => s.source)).toEqual(["second"]);
  });

  it("answers LookupRoute with exactly the chain an engine stored, then its removal and clear", async () => {
    const engine = await startEngine();
    await startReading(engine);
    await engine.publish(0, batchPayload(1, [stored(1, 3)], 0));
    await expectHints(1, 4, [["pod-a/dp0", 3, 48]]);
    // A block of another chain the engine never stored is not hinted.
    expect(await hintsFor(100, 2)).toEqual([]);

    await engine.publish(1, batchPayload(2, [blockRemoved([3n])], 0));
    await expectHints(1, 4, [["pod-a/dp0", 2, 32]]);

    await engine.publish(2, batchPayload(3, [stored(50, 2)], 0));
    await expectHints(50, 2, [["pod-a/dp0", 2, 32]]);
    await engine.publish(3, encodeMsgpack([4.5, [MsgpackMap.of({ type: "AllBlocksCleared" })], 0]));
    await expectHints(1, 4, []);
    await expectHints(50, 2, []);
  });

  it("reports the stream in GetCacheState for its tenant and model", async () => {
    const engine = await startEngine();
    await startReading(engine);
    await engine.publish(0, batchPayload(1, [stored(1, 2)], 0));
    await expectHints(1, 2, [["pod-a/dp0", 2, 32]]);
    const state = await (client as GrpcClient<typeof CacheIndexService>).getCacheState({
      tenant: scope.tenant,
      model: scope.model,
    });
    expect(state.engineStreams).toHaveLength(1);
    expect(state.engineStreams[0]).toMatchObject({
      source: "pod-a",
      endpoint: engine.endpoint,
      connection: StreamConnection.CONNECTED,
      replicaIds: ["pod-a/dp0"],
      batches: 1n,
      decodeErrors: 0n,
      gaps: 0n,
    });
    const other = await (client as GrpcClient<typeof CacheIndexService>).getCacheState({
      tenant: scope.tenant,
      model: "another-model",
    });
    expect(other.engineStreams).toEqual([]);
  });

  it("forgets what an engine held once its seq starts again from 0", async () => {
    const engine = await startEngine();
    await startReading(engine);
    await engine.publish(40, batchPayload(1, [stored(1, 3)], 0));
    await expectHints(1, 3, [["pod-a/dp0", 3, 48]]);
    await engine.publish(0, batchPayload(2, [stored(20, 1)], 0));
    await expectHints(20, 1, [["pod-a/dp0", 1, 16]]);
    expect(await hintsFor(1, 3)).toEqual([]);
  });

  it("fills a gap from the engine's replay ROUTER", async () => {
    const engine = await startEngine({ replay: true });
    await startReading(engine);
    await engine.publish(0, batchPayload(1, [stored(1, 2)], 0));
    await expectHints(1, 2, [["pod-a/dp0", 2, 32]]);
    engine.lose(1, batchPayload(2, [stored(3, 2, 2)], 0));
    engine.lose(2, batchPayload(3, [blockRemoved([4n])], 0));
    await engine.publish(3, batchPayload(4, [stored(30, 1)], 0));
    await expectHints(30, 1, [["pod-a/dp0", 1, 16]]);
    expect(await hintsFor(1, 5)).toEqual([["pod-a/dp0", 3, 48]]);
    expect(engine.replayRequests).toEqual([0n]);
  });

  it("keeps an engine's entries past the TTL while connected, and lets them expire once it vanishes", async () => {
    const engine = await startEngine();
    await startReading(engine, [
      "--liveness-window-seconds",
      "0.5",
      "--sweep-interval-seconds",
      "0.2",
    ]);
    await engine.publish(0, batchPayload(1, [stored(1, 2)], 0));
    await expectHints(1, 2, [["pod-a/dp0", 2, 32]]);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // past the 1 s TTL
    expect(await hintsFor(1, 2)).toEqual([["pod-a/dp0", 2, 32]]);

    engine.close();
    await waitFor(
      async () =>
        (await readyz(sidecar as SidecarProcess)).kvEventStreams[0]?.connection === "disconnected",
      "the disconnection",
    );
    await expectHints(1, 2, []);
  });
});
