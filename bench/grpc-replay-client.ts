import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CacheEventType,
  GetCacheStateRequestSchema,
  GetCacheStateResponseSchema,
  LookupRouteRequestSchema,
  LookupRouteResponseSchema,
  PublishEventRequestSchema,
} from "../gen/inferencecache/v1/cache_index_pb.js";
import type { CacheEvent, EventBatch, RouteQuery } from "../src/core/types.js";
import type {
  ReplayClientMessage,
  ReplayClientOptions,
  ReplayClientResult,
} from "./grpc-replay-bench.js";
import { H2UnaryClient } from "./h2-unary-client.js";
import { loadTrace } from "./mooncake-trace.js";
import { buildReplaySchedule } from "./replay-bench.js";
import { quantile } from "./stats.js";

/**
 * The client process of the gRPC replay (`grpc-replay-bench.ts` starts it): builds the replay's
 * schedule, encodes every call before the clock starts, warms the server up under another tenant,
 * then replays with `concurrency` calls in flight and prints its measurements as JSON lines. Lookup
 * answers are kept as bytes and decoded after the clock stops, so the client spends its CPU on the
 * calls alone (on a small machine it shares the cores with the server).
 */

const SERVICE = "/inferencecache.v1.CacheIndexService";
const WARMUP_TENANT = "warmup";

const options = JSON.parse(process.argv[2] ?? "{}") as ReplayClientOptions;
const schedule = buildReplaySchedule({
  trace: loadTrace(options.tracePath),
  workers: options.workers,
  capacityBlocks: options.capacityBlocks,
  traceCopies: options.traceCopies,
  seed: options.seed,
  fraction: options.fraction,
});
const client = new H2UnaryClient(options.address);

function call(method: string, request: Buffer): Promise<Buffer> {
  return client.call(`${SERVICE}/${method}`, request);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function encodeLookup(query: RouteQuery, tenant: string): Buffer {
  const { model, hashScheme, prefixHashes } = query;
  return asBuffer(
    toBinary(
      LookupRouteRequestSchema,
      create(LookupRouteRequestSchema, {
        tenant,
        model,
        hashScheme,
        prefixHashes: [...prefixHashes],
      }),
    ),
  );
}

const EVENT_TYPES: Partial<Record<CacheEvent["type"], CacheEventType>> = {
  "prefix-added": CacheEventType.PREFIX_ADDED,
  "prefix-evicted": CacheEventType.PREFIX_EVICTED,
};

function encodePublish(batch: EventBatch, tenant: string): Buffer {
  const events = batch.events.map((event) => ({
    type: EVENT_TYPES[event.type] ?? CacheEventType.UNSPECIFIED,
    prefixes: "prefixes" in event ? event.prefixes.map((prefix) => ({ ...prefix })) : [],
  }));
  const { model, replicaId, hashScheme } = batch;
  return asBuffer(
    toBinary(
      PublishEventRequestSchema,
      create(PublishEventRequestSchema, { tenant, model, replicaId, hashScheme, events }),
    ),
  );
}

/** Encoded calls for the first `count` requests of the schedule, under `tenant`. */
function encodeCalls(count: number, tenant: string) {
  return {
    count,
    lookups: schedule.lookups.slice(0, count).map((query) => encodeLookup(query, tenant)),
    publications: schedule.publications
      .slice(0, count)
      .map((batch) => (batch === undefined ? undefined : encodePublish(batch, tenant))),
  };
}

/**
 * Replays encoded calls: `concurrency` lanes each take the next request, time its lookup, then
 * publish its events once the same worker's previous publish has finished (so a worker's events
 * reach the index in order, as over its one event stream), then take the next request.
 */
async function replay(
  calls: ReturnType<typeof encodeCalls>,
  latencies: Float64Array,
  answers: Buffer[],
): Promise<void> {
  const previousPublish: (Promise<unknown> | undefined)[] = new Array(schedule.workers);
  let next = 0;
  const lane = async () => {
    while (next < calls.count) {
      const i = next++;
      const t0 = performance.now();
      answers[i] = await call("LookupRoute", calls.lookups[i] as Buffer);
      latencies[i] = performance.now() - t0;
      const publication = calls.publications[i];
      if (publication === undefined) continue;
      const worker = schedule.workerOf[i] as number;
      const publish = (previousPublish[worker] ?? Promise.resolve()).then(() =>
        call("PublishEvent", publication),
      );
      previousPublish[worker] = publish;
      await publish;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
}

/** Mean matched blocks of the top hint, decoded once the clock has stopped. */
function meanMatchedBlocks(answers: readonly Buffer[]): number {
  let matched = 0;
  for (const answer of answers) {
    matched += fromBinary(LookupRouteResponseSchema, answer).hints[0]?.matchedBlocks ?? 0;
  }
  return answers.length === 0 ? 0 : matched / answers.length;
}

function send(message: ReplayClientMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const requests = schedule.lookups.length;
const latencies = new Float64Array(requests);
const warmup = encodeCalls(Math.ceil(requests * options.warmupFraction), WARMUP_TENANT);
const timed = encodeCalls(requests, schedule.lookups[0]?.tenant ?? "bench");
const answers: Buffer[] = new Array(requests);
try {
  await replay(warmup, latencies, answers);
  send({ type: "timed-start" });
  const start = performance.now();
  await replay(timed, latencies, answers);
  const seconds = (performance.now() - start) / 1000;
  const first = schedule.lookups[0];
  const state = fromBinary(
    GetCacheStateResponseSchema,
    await call(
      "GetCacheState",
      asBuffer(
        toBinary(
          GetCacheStateRequestSchema,
          create(GetCacheStateRequestSchema, {
            tenant: first?.tenant ?? "",
            model: first?.model ?? "",
          }),
        ),
      ),
    ),
  );
  const sample = Array.from(latencies);
  const result: ReplayClientResult = {
    totals: schedule.totals,
    seconds,
    lookupP50Us: quantile(sample, 0.5) * 1000,
    lookupP99Us: quantile(sample, 0.99) * 1000,
    meanMatchedBlocks: meanMatchedBlocks(answers),
    holderEntries: Number(state.totalEntries),
  };
  send({ type: "result", result });
} finally {
  client.close();
}
