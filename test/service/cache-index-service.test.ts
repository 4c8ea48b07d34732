import { create, toJson } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CacheEventType,
  CacheIndexService,
  DropReason,
  LookupRouteRequestSchema,
  LookupRouteResponseSchema,
  ReasonCode,
  ReportCacheStateRequestSchema,
  StreamConnection,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import type { CacheIndex } from "../../src/core/cache-index.js";
import { createCacheIndex } from "../../src/core/create-cache-index.js";
import type { KvEventSource } from "../../src/kv-events/kv-event-source.js";
import type { KvEventStreamState } from "../../src/kv-stream/kv-event-stream.js";
import { createCacheIndexService } from "../../src/service/cache-index-service.js";
import { FakeCacheIndex } from "../metrics/fake-cache-index.js";
import { chainOf, hashOf } from "../support/hashes.js";
import { kvEventSource } from "../support/kv-event-source.js";
import { ManualClock } from "../support/manual-clock.js";

const scope = { tenant: "acme", model: "llama-3-8b", hashScheme: "vllm-sha256_cbor-bs16" };
const WALL = Date.UTC(2026, 10, 22, 12, 0, 0);

function prefixes(first: number, length: number) {
  return chainOf(first, length).map((prefixHash, i) => ({ prefixHash, tokenCount: (i + 1) * 16 }));
}

async function statusOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

describe("createCacheIndexService()", () => {
  let clock: ManualClock;
  let index: CacheIndex;
  let ready: boolean;
  let notReadyModels: string[];
  let client: Client<typeof CacheIndexService>;

  beforeEach(() => {
    clock = new ManualClock();
    index = createCacheIndex({ clock });
    ready = true;
    notReadyModels = [];
    const service = createCacheIndexService({
      index,
      clock,
      wallClock: () => WALL,
      isReady: () => ready,
      onNotReady: (model) => notReadyModels.push(model),
    });
    client = createClient(
      CacheIndexService,
      createRouterTransport((router) => router.service(CacheIndexService, service)),
    );
  });

  it("reports a chain and finds it with LookupRoute", async () => {
    const reported = await client.reportCacheState({
      ...scope,
      replicaId: "pod-a",
      prefixes: prefixes(1, 3),
      stats: { activeRequests: 2, queuedRequests: 1, kvCacheUsage: 0.4 },
    });
    expect(reported).toMatchObject({ accepted: 3, dropped: 0, drops: [] });
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 5) });
    expect(answer.reasonCode).toBe(ReasonCode.PREFIX_MATCH);
    expect(answer.evaluatedBlocks).toBe(5);
    expect(answer.hints).toHaveLength(1);
    expect(answer.hints[0]).toMatchObject({
      replicaId: "pod-a",
      matchedBlocks: 3,
      matchedTokens: 48,
      freshness: 1,
      score: 48,
      stats: { replicaId: "pod-a", activeRequests: 2, queuedRequests: 1, kvCacheUsage: 0.4 },
    });
  });

  it("stores stats under the request's replica_id whatever stats.replica_id says", async () => {
    await client.reportCacheState({
      ...scope,
      replicaId: "pod-a",
      prefixes: prefixes(1, 1),
      stats: { replicaId: "pod-IMPOSTOR", activeRequests: 1 },
    });
    const state = await client.getCacheState({ tenant: scope.tenant, model: scope.model });
    expect(state.replicas.map((r) => [r.replicaId, r.stats?.replicaId])).toEqual([
      ["pod-a", "pod-a"],
    ]);
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 1) });
    expect(answer.hints[0]?.stats?.replicaId).toBe("pod-a");
  });

  it("stores REPLICA_UPDATED stats under the request's replica_id too", async () => {
    await client.publishEvent({
      ...scope,
      replicaId: "pod-a",
      events: [
        {
          type: CacheEventType.REPLICA_UPDATED,
          stats: { replicaId: "pod-IMPOSTOR", activeRequests: 7, kvCacheUsage: 0.9 },
        },
      ],
    });
    const state = await client.getCacheState({ tenant: scope.tenant, model: scope.model });
    expect(
      state.replicas.map((r) => [r.replicaId, r.stats?.replicaId, r.stats?.activeRequests]),
    ).toEqual([["pod-a", "pod-a", 7]]);
  });

  it("drops and counts prefixes without a hash_scheme and still applies the stats", async () => {
    const reported = await client.reportCacheState({
      ...scope,
      hashScheme: "",
      replicaId: "pod-a",
      prefixes: prefixes(1, 3),
      stats: { activeRequests: 4 },
    });
    expect(reported.accepted).toBe(0);
    expect(reported.dropped).toBe(3);
    expect(reported.drops).toMatchObject([{ reason: DropReason.HASH_SCHEME_MISSING, count: 3 }]);
    const state = await client.getCacheState({ tenant: scope.tenant, model: scope.model });
    expect(state.replicas[0]?.stats?.activeRequests).toBe(4);
    expect(state.totalEntries).toBe(0n);
  });

  it("drops an empty or over-long prefix_hash and applies the rest", async () => {
    const reported = await client.reportCacheState({
      ...scope,
      replicaId: "pod-a",
      prefixes: [
        { prefixHash: new Uint8Array(0), tokenCount: 16 },
        { prefixHash: new Uint8Array(65), tokenCount: 16 },
        { prefixHash: hashOf(1), tokenCount: 16 },
      ],
    });
    expect(reported).toMatchObject({ accepted: 1, dropped: 2 });
    expect(reported.drops.map((d) => [d.reason, d.count])).toEqual([
      [DropReason.PREFIX_HASH_EMPTY, 1],
      [DropReason.PREFIX_HASH_TOO_LONG, 1],
    ]);
  });

  it.each([
    ["tenant", { tenant: "" }],
    ["model", { model: "" }],
    ["replica_id", { replicaId: "" }],
    ["stats.kv_cache_usage", { stats: { kvCacheUsage: Number.NaN } }],
    ["stats.kv_cache_usage", { stats: { kvCacheUsage: Number.POSITIVE_INFINITY } }],
    ["stats.kv_cache_usage", { stats: { kvCacheUsage: -0.5 } }],
  ])(
    "answers ReportCacheState with a bad %s with INVALID_ARGUMENT naming it",
    async (field, bad) => {
      const error = await statusOf(
        client.reportCacheState({ ...scope, replicaId: "pod-a", prefixes: prefixes(1, 2), ...bad }),
      );
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain(field);
      expect(
        (await client.getCacheState({ tenant: "acme", model: "llama-3-8b" })).totalEntries,
      ).toBe(0n);
    },
  );

  it.each([
    ["tenant", { tenant: "" }],
    ["replica_id", { replicaId: "" }],
    [
      "events[0].stats.kv_cache_usage",
      { events: [{ type: CacheEventType.REPLICA_UPDATED, stats: { kvCacheUsage: 2 } }] },
    ],
  ])("answers PublishEvent with a bad %s with INVALID_ARGUMENT naming it", async (field, bad) => {
    const error = await statusOf(client.publishEvent({ ...scope, replicaId: "pod-a", ...bad }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain(field);
  });

  it("names the event and field of bad stats in a batch", async () => {
    const error = await statusOf(
      client.publishEvent({
        ...scope,
        replicaId: "pod-a",
        events: [
          { type: CacheEventType.PREFIX_ADDED, prefixes: prefixes(1, 2) },
          { type: CacheEventType.REPLICA_UPDATED, stats: { kvCacheUsage: Number.NaN } },
        ],
      }),
    );
    expect(error.rawMessage).toBe(
      "events[1].stats.kv_cache_usage must be a fraction from 0 to 1, got NaN",
    );
    expect((await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 1) })).hints).toEqual([]);
  });

  it("applies known events and ignores and counts unknown ones", async () => {
    const published = await client.publishEvent({
      ...scope,
      replicaId: "pod-a",
      events: [
        { type: CacheEventType.PREFIX_ADDED, prefixes: prefixes(1, 3) },
        { type: CacheEventType.UNSPECIFIED },
        { type: 99 as CacheEventType },
        { type: CacheEventType.PREFIX_EVICTED, prefixes: prefixes(3, 1) },
      ],
    });
    expect(published).toMatchObject({ applied: 2, ignored: 2 });
    expect(published.drops).toMatchObject([{ reason: DropReason.UNKNOWN_EVENT_TYPE, count: 2 }]);
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 3) });
    expect(answer.hints[0]?.matchedBlocks).toBe(2);
  });

  it("clears a replica with ALL_CLEARED", async () => {
    await client.reportCacheState({ ...scope, replicaId: "pod-a", prefixes: prefixes(1, 3) });
    await client.reportCacheState({ ...scope, replicaId: "pod-b", prefixes: prefixes(1, 3) });
    await client.publishEvent({
      tenant: scope.tenant,
      model: scope.model,
      replicaId: "pod-a",
      events: [{ type: CacheEventType.ALL_CLEARED }],
    });
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 3) });
    expect(answer.hints.map((h) => h.replicaId)).toEqual(["pod-b"]);
  });

  it.each([
    ["tenant", "tenant", { tenant: "" }, ReasonCode.INVALID_REQUEST],
    ["model", "model", { model: "" }, ReasonCode.INVALID_REQUEST],
    ["prefix_hashes", "prefix_hashes", { prefixHashes: [] }, ReasonCode.INVALID_REQUEST],
    ["hash_scheme", "", { hashScheme: "" }, ReasonCode.HASH_SCHEME_MISSING],
  ])(
    "answers a lookup missing %s with a reason code, never an error",
    async (_, field, bad, reason) => {
      const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 2), ...bad });
      expect(answer.reasonCode).toBe(reason);
      expect(answer.invalidField).toBe(field);
      expect(answer.hints).toEqual([]);
    },
  );

  it("answers NOT_READY while the index is not ready, and counts it", async () => {
    ready = false;
    const answer = await client.lookupRoute({ ...scope, prefixHashes: chainOf(1, 2) });
    expect(answer.reasonCode).toBe(ReasonCode.NOT_READY);
    expect(notReadyModels).toEqual(["llama-3-8b"]);
  });

  it("fails open with NO_HINT when the index throws unexpectedly", () => {
    const failures: unknown[] = [];
    const broken = createCacheIndexService({
      index: {
        report: (r) => index.report(r),
        publish: (b) => index.publish(b),
        describe: (q) => index.describe(q),
        sweep: (n) => index.sweep(n),
        keepAlive: (r, until) => index.keepAlive(r, until),
        size: () => index.size(),
        lookup: () => {
          throw new Error("boom");
        },
      },
      clock,
      onLookupFailure: (error) => failures.push(error),
    });
    const answer = broken.lookupRoute(
      create(LookupRouteRequestSchema, { ...scope, prefixHashes: chainOf(1, 1) }),
    );
    expect(answer.reasonCode).toBe(ReasonCode.NO_HINT);
    expect(failures).toHaveLength(1);
  });

  it("with reuseLookupResponses, overwrites one response and its hints, call after call", () => {
    const reporting = createCacheIndexService({ index, clock });
    reporting.reportCacheState(
      create(ReportCacheStateRequestSchema, {
        ...scope,
        replicaId: "pod-a",
        prefixes: prefixes(1, 3),
        stats: { activeRequests: 3, queuedRequests: 1, kvCacheUsage: 0.25 },
      }),
    );
    reporting.reportCacheState(
      create(ReportCacheStateRequestSchema, {
        ...scope,
        replicaId: "pod-b",
        prefixes: prefixes(1, 1),
      }),
    );
    const lookup = (count: number) =>
      create(LookupRouteRequestSchema, { ...scope, prefixHashes: chainOf(1, count) });
    const reusing = createCacheIndexService({ index, clock, reuseLookupResponses: true });
    const expectedLong = toJson(LookupRouteResponseSchema, reporting.lookupRoute(lookup(3)));
    const expectedShort = toJson(LookupRouteResponseSchema, reporting.lookupRoute(lookup(1)));

    const first = reusing.lookupRoute(lookup(3));
    expect(toJson(LookupRouteResponseSchema, first)).toEqual(expectedLong);
    expect(first.hints[0]?.stats?.replicaId).toBe("pod-a");
    const [firstHint] = first.hints;
    const second = reusing.lookupRoute(lookup(1));
    expect(second).toBe(first);
    expect(second.hints[0]).toBe(firstHint);
    expect(toJson(LookupRouteResponseSchema, second)).toEqual(expectedShort);
    expect(toJson(LookupRouteResponseSchema, reusing.lookupRoute(lookup(3)))).toEqual(expectedLong);
    // Without the option every response is the caller's to keep.
    expect(reporting.lookupRoute(lookup(1))).not.toBe(reporting.lookupRoute(lookup(1)));
  });

  it("lets the index reuse its answer only with reuseLookupResponses, and hands it the request", () => {
    const request = create(LookupRouteRequestSchema, { ...scope, prefixHashes: chainOf(1, 2) });
    for (const reuse of [false, true]) {
      const fake = new FakeCacheIndex();
      createCacheIndexService({ index: fake, clock, reuseLookupResponses: reuse }).lookupRoute(
        request,
      );
      expect(fake.calls).toEqual([{ method: "lookup", argument: request, reuse }]);
      expect(fake.calls[0]?.argument).toBe(request);
    }
  });

  it("describes a (tenant, model) with GetCacheState", async () => {
    await client.reportCacheState({
      ...scope,
      replicaId: "pod-b",
      prefixes: prefixes(1, 3),
      stats: { activeRequests: 1 },
    });
    clock.advance(2_500);
    await client.reportCacheState({
      ...scope,
      hashScheme: "xxhash-bs16",
      replicaId: "pod-a",
      prefixes: prefixes(1, 2),
    });
    const state = await client.getCacheState({ tenant: scope.tenant, model: scope.model });
    expect(state.tenant).toBe("acme");
    expect(state.totalEntries).toBe(5n);
    expect(state.hashSchemes.map((s) => [s.hashScheme, s.entries])).toEqual([
      ["vllm-sha256_cbor-bs16", 3n],
      ["xxhash-bs16", 2n],
    ]);
    expect(state.replicas.map((r) => [r.replicaId, r.prefixCount, r.lastSeenAgeSeconds])).toEqual([
      ["pod-a", 2n, 0],
      ["pod-b", 3n, 2.5],
    ]);
    expect(state.replicas[0]?.stats).toBeUndefined();
    const lastSeen = state.replicas[1]?.lastSeen;
    expect(Number(lastSeen?.seconds) * 1000 + (lastSeen?.nanos ?? 0) / 1e6).toBe(WALL - 2_500);
    const filtered = await client.getCacheState({
      tenant: scope.tenant,
      model: scope.model,
      hashScheme: "xxhash-bs16",
    });
    expect(filtered.totalEntries).toBe(2n);
    expect(filtered.replicas.map((r) => r.prefixCount)).toEqual([2n, 0n]);
  });

  it("answers GetCacheState without a tenant with INVALID_ARGUMENT", async () => {
    const error = await statusOf(client.getCacheState({ model: "m" }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("tenant is required");
  });

  /** GetCacheState of `scope` from a service that reads these engine streams. */
  async function stateWithStreams(streams: readonly KvEventStreamState[]) {
    const client = createClient(
      CacheIndexService,
      createRouterTransport((router) =>
        router.service(
          CacheIndexService,
          createCacheIndexService({ index, clock, engineStreams: () => streams }),
        ),
      ),
    );
    return await client.getCacheState({ tenant: scope.tenant, model: scope.model });
  }

  /** A stream of `source` that has not connected yet. */
  function idleStream(source: KvEventSource): KvEventStreamState {
    return { source, connection: "connecting", framingErrors: 0, decodeErrors: 0, replicas: [] };
  }

  it("reports the engine streams feeding the (tenant, model), summed over their ranks", async () => {
    const source = kvEventSource({ name: "pod-7", replicaId: "pod-7", ...scope });
    const rank = (r: number, lastBatchAgeSeconds: number | undefined) => ({
      rank: r,
      replicaId: `pod-7/dp${r}`,
      lastSeq: 9,
      lastBatchAgeSeconds,
      batches: 10,
      events: { BlockStored: 8, BlockRemoved: 2, AllBlocksCleared: 0, unknown: 0 },
      gaps: 1,
      replays: 1,
      replayFailures: 0,
      restarts: r,
      clears: { gap: 0, restart: r },
    });
    const state = await stateWithStreams([
      {
        source,
        connection: "connected" as const,
        framingErrors: 1,
        decodeErrors: 2,
        replicas: [rank(0, 3.5), rank(1, 0.5)],
      },
      idleStream({ ...source, name: "other-model", model: "other" }),
    ]);
    expect(state.engineStreams).toHaveLength(1);
    expect(state.engineStreams[0]).toMatchObject({
      source: "pod-7",
      endpoint: "tcp://10.0.0.7:5557",
      connection: StreamConnection.CONNECTED,
      replicaIds: ["pod-7/dp0", "pod-7/dp1"],
      lastBatchAgeSeconds: 0.5,
      batches: 20n,
      decodeErrors: 3n,
      gaps: 2n,
      replays: 2n,
      restarts: 1n,
      clears: 1n,
    });
  });

  it("lists the engine streams by source name", async () => {
    const named = (name: string) => idleStream(kvEventSource({ name, replicaId: name, ...scope }));
    const state = await stateWithStreams([named("pod-7"), named("dead"), named("pod-10")]);
    expect(state.engineStreams.map((s) => s.source)).toEqual(["dead", "pod-10", "pod-7"]);
  });

  it("serves Connect JSON, hashes as base64", async () => {
    const jsonClient = createClient(
      CacheIndexService,
      createRouterTransport(
        (router) => router.service(CacheIndexService, createCacheIndexService({ index, clock })),
        { transport: { useBinaryFormat: false } },
      ),
    );
    await jsonClient.reportCacheState({ ...scope, replicaId: "pod-j", prefixes: prefixes(7, 2) });
    const answer = await jsonClient.lookupRoute({ ...scope, prefixHashes: chainOf(7, 2) });
    expect(answer.hints.map((h) => [h.replicaId, h.matchedTokens])).toEqual([["pod-j", 32]]);
  });
});
