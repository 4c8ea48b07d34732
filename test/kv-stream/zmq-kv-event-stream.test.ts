import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Subscriber } from "zeromq";
import { blockHashHex } from "../../src/kv-events/block-hash-hex.js";
import { MAX_BATCH_BLOCKS } from "../../src/kv-events/kv-event-decoder.js";
import type { KvEventSource } from "../../src/kv-events/kv-event-source.js";
import type { KvEventStream } from "../../src/kv-stream/kv-event-stream.js";
import {
  createZmqKvEventStream,
  MAX_RANKS,
  type ZmqKvEventStreamOptions,
} from "../../src/kv-stream/zmq-kv-event-stream.js";
import { kvEventSource } from "../support/kv-event-source.js";
import { ManualClock } from "../support/manual-clock.js";
import { waitFor } from "../support/wait-for.js";
import {
  batchPayload,
  blockRemoved,
  blockStored,
  FakeEngine,
  seqFrame,
  tsOf,
} from "./fake-engine.js";
import { RecordingLogger } from "./recording-logger.js";
import { RecordingSink } from "./recording-sink.js";

/** Makes `sink` throw, as a buggy sink would, on the batch with timestamp `ts`. */
function throwOnApply(sink: RecordingSink, ts: number): void {
  const apply = sink.apply.bind(sink);
  sink.apply = (source, batch) => {
    if (batch.ts === ts) throw new Error("a bug in the sink");
    apply(source, batch);
  };
}

function sourceFor(engine: FakeEngine, overrides: Partial<KvEventSource> = {}): KvEventSource {
  return kvEventSource({
    endpoint: engine.endpoint,
    replayEndpoint: engine.replayEndpoint,
    topic: engine.topic,
    ...overrides,
  });
}

/** Collects what a stream logs, by message. */
describe("createZmqKvEventStream()", () => {
  const engines: FakeEngine[] = [];
  const streams: KvEventStream[] = [];
  let sink: RecordingSink;
  let clock: ManualClock;

  async function startEngine(options: Parameters<typeof FakeEngine.start>[0] = {}) {
    const engine = await FakeEngine.start(options);
    engines.push(engine);
    return engine;
  }

  /** Subscribes to `engine` and resolves once its subscription has reached the engine. */
  async function subscribe(
    engine: FakeEngine,
    options: Partial<ZmqKvEventStreamOptions> = {},
    source = sourceFor(engine),
  ): Promise<KvEventStream> {
    sink = new RecordingSink();
    clock = new ManualClock();
    const stream = createZmqKvEventStream({
      source,
      sink,
      clock,
      replayTimeoutMs: 1_000,
      reconnectIntervalMs: 20,
      reconnectMaxIntervalMs: 100,
      ...options,
    });
    streams.push(stream);
    await engine.waitForSubscriber();
    await waitFor(() => stream.state().connection === "connected", "the stream to connect");
    return stream;
  }

  afterEach(async () => {
    await Promise.all(streams.splice(0).map((stream) => stream.close()));
    for (const engine of engines.splice(0)) engine.close();
  });

  it("applies batches in seq order, decoded, and reports what it applied", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine);
    await engine.publish(7, batchPayload(1, [blockStored([1n, 0xfedc_ba98_7654_3210n])], 0));
    await engine.publish(8, batchPayload(2, [blockRemoved([1n])], 0));
    await engine.publish(9, batchPayload(3, [blockStored([3n], 2n), blockRemoved([3n])], 0));
    await waitFor(() => sink.appliedTs.length === 3, "three batches");

    expect(sink.log).toEqual([`apply ${tsOf(1)}`, `apply ${tsOf(2)}`, `apply ${tsOf(3)}`]);
    const first = sink.calls.find((call) => call.op === "apply");
    expect(first?.op === "apply" && first.batch.events[0]).toMatchObject({
      type: "BlockStored",
      tokenCount: 32,
      blockSize: 16,
    });
    expect(
      first?.op === "apply" &&
        first.batch.events[0]?.type === "BlockStored" &&
        first.batch.events[0].blockHashes.map(blockHashHex),
    ).toEqual(["0000000000000001", "fedcba9876543210"]);
    expect(stream.state()).toMatchObject({
      connection: "connected",
      framingErrors: 0,
      decodeErrors: 0,
      replicas: [
        {
          rank: 0,
          replicaId: "pod-a/dp0",
          lastSeq: 9,
          lastBatchAgeSeconds: 0,
          batches: 3,
          events: { BlockStored: 2, BlockRemoved: 2, AllBlocksCleared: 0, unknown: 0 },
          gaps: 0,
          restarts: 0,
          clears: { gap: 0, restart: 0 },
        },
      ],
    });
  });

  it("keeps replicas apart by data-parallel rank, each with its own seq", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine);
    await engine.publish(0, batchPayload(1, [], 0));
    await engine.publish(0, batchPayload(2, [], 1));
    await engine.publish(1, batchPayload(3, [], 1));
    await engine.publish(1, batchPayload(4, [], 0));
    await waitFor(() => sink.appliedTs.length === 4, "four batches");

    expect(sink.log).toEqual([1, 2, 3, 4].map((ts) => `apply ${tsOf(ts)}`));
    expect(stream.state().replicas.map((r) => [r.replicaId, r.lastSeq])).toEqual([
      ["pod-a/dp0", 1],
      ["pod-a/dp1", 1],
    ]);
  });

  it("keeps at most MAX_RANKS ranks per stream, skipping batches of more as malformed", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine);
    for (let rank = 0; rank <= MAX_RANKS; rank++) {
      await engine.publish(0, batchPayload(1, [], rank));
    }
    await engine.publish(1, batchPayload(2, [], 0));
    await waitFor(() => sink.appliedTs.length === MAX_RANKS + 1, "every kept rank's batches");
    expect(stream.state().replicas).toHaveLength(MAX_RANKS);
    expect(stream.state().decodeErrors).toBe(1);
    expect(sink.appliedTs.at(-1)).toBe(tsOf(2));
  });

  it("fails to start, leaving nothing open, on an endpoint libzmq refuses", async () => {
    // Not a valid sources file entry; the stream must still clean up after itself.
    const source = kvEventSource({ endpoint: "tcp://_pod:5557" });
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(() =>
        createZmqKvEventStream({ source, sink: new RecordingSink(), clock: new ManualClock() }),
      ).toThrow(/Invalid argument/);
    }
    // A socket closed the wrong way surfaces as an unhandled error, which fails the run.
    await new Promise((resolve) => setTimeout(resolve, 50));
  });

  it("only receives its topic", async () => {
    const engine = await startEngine({ topic: "kv-events" });
    await subscribe(engine);
    await engine.sendFrames(["other", seqFrame(0), batchPayload(1)]);
    await engine.publish(0, batchPayload(2));
    await waitFor(() => sink.appliedTs.length === 1, "the batch on its topic");
    expect(sink.log).toEqual([`apply ${tsOf(2)}`]);
  });

  it("counts messages with bad framing, logs them at a bounded rate and keeps going", async () => {
    const engine = await startEngine();
    const logger = new RecordingLogger();
    const stream = await subscribe(engine, { logger, warningIntervalMs: 60_000 });
    await engine.publish(0, batchPayload(1));
    await engine.sendFrames([seqFrame(1), batchPayload(9)]);
    await engine.sendFrames(["", new Uint8Array(4), batchPayload(9)]);
    await engine.sendFrames(["", seqFrame(1), batchPayload(9), "extra"]);
    await engine.publish(1, batchPayload(2));
    await waitFor(() => sink.appliedTs.length === 2, "the batch after the bad ones");

    expect(sink.log).toEqual([`apply ${tsOf(1)}`, `apply ${tsOf(2)}`]);
    expect(stream.state()).toMatchObject({ framingErrors: 3, decodeErrors: 0 });
    const warnings = logger.lines.filter((l) => l.message === "malformed KV-event message skipped");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.fields).toMatchObject({ kind: "framing", source: "pod-a", suppressed: 0 });
  });

  it("skips an undecodable payload, and clears its replica since that batch is lost", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine, {}, sourceFor(engine, { replayEndpoint: undefined }));
    await engine.publish(0, batchPayload(1));
    await engine.publish(1, Uint8Array.of(0x93, 0xc1)); // 0xc1 is never valid msgpack
    await engine.publish(2, batchPayload(3));
    await waitFor(() => sink.appliedTs.length === 2, "the batch after the bad one");

    expect(sink.log).toEqual([`apply ${tsOf(1)}`, "clear undefined gap", `apply ${tsOf(3)}`]);
    expect(stream.state()).toMatchObject({ decodeErrors: 1, replicas: [{ gaps: 1, lastSeq: 2 }] });
  });

  it(`skips a batch of more than MAX_BATCH_BLOCKS hashes as undecodable, and goes on`, async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine, {}, sourceFor(engine, { replayEndpoint: undefined }));
    await engine.publish(0, batchPayload(1));
    // 1-byte hashes: a small payload whose hashes, decoded, would take some 60 MB of heap.
    const hashes = Array.from({ length: MAX_BATCH_BLOCKS + 1 }, () => 1n);
    await engine.publish(1, batchPayload(2, [blockRemoved(hashes)]));
    await engine.publish(2, batchPayload(3));
    await waitFor(() => sink.appliedTs.length === 2, "the batch after the big one");

    expect(sink.log).toEqual([`apply ${tsOf(1)}`, "clear undefined gap", `apply ${tsOf(3)}`]);
    expect(stream.state()).toMatchObject({ decodeErrors: 1, replicas: [{ gaps: 1, lastSeq: 2 }] });
  });

  it.each([3, 4] as const)(
    "fills a gap from the engine's replay ROUTER answering with %i frames, in order",
    async (frames) => {
      const engine = await startEngine({ replay: true });
      engine.replay = { frames };
      const stream = await subscribe(engine);
      await engine.publish(0, batchPayload(1, [blockStored([1n])], 0));
      await engine.publish(1, batchPayload(2, [], 0));
      engine.lose(2, batchPayload(3, [blockStored([2n], 1n)], 0));
      engine.lose(3, batchPayload(4, [blockRemoved([1n])], 0));
      await engine.publish(4, batchPayload(5, [], 0));
      await engine.publish(5, batchPayload(6, [], 0));
      await waitFor(() => sink.appliedTs.length === 6, "every batch, lost ones included");

      expect(sink.log).toEqual([1, 2, 3, 4, 5, 6].map((ts) => `apply ${tsOf(ts)}`));
      // From the last batch applied, which must come back unchanged: same engine, same history.
      expect(engine.replayRequests).toEqual([1n]);
      expect(stream.state().replicas).toMatchObject([
        { lastSeq: 5, batches: 6, gaps: 1, replays: 1, replayFailures: 0, restarts: 0 },
      ]);
    },
  );

  it("clears the replica when the replay buffer no longer reaches back to the gap", async () => {
    const engine = await startEngine({ replay: true });
    const stream = await subscribe(engine);
    await engine.publish(0, batchPayload(1));
    await engine.publish(1, batchPayload(2));
    engine.lose(2, batchPayload(3));
    engine.lose(3, batchPayload(4));
    engine.buffer.delete(0n);
    engine.buffer.delete(1n);
    engine.buffer.delete(2n); // the engine's buffer has moved past the missing batch 2
    await engine.publish(4, batchPayload(5));
    await engine.publish(5, batchPayload(6));
    await waitFor(() => sink.appliedTs.length === 4, "the live batches");

    expect(sink.log).toEqual([
      `apply ${tsOf(1)}`,
      `apply ${tsOf(2)}`,
      "clear undefined gap",
      `apply ${tsOf(5)}`,
      `apply ${tsOf(6)}`,
    ]);
    expect(stream.state().replicas).toMatchObject([
      { gaps: 1, replays: 0, replayFailures: 1, clears: { gap: 1, restart: 0 } },
    ]);
  });

  it("clears the replica as restarted when the replay shows a different history", async () => {
    const engine = await startEngine({ replay: true });
    const stream = await subscribe(engine);
    await engine.publish(0, batchPayload(1));
    await engine.publish(1, batchPayload(2));
    // A new engine process whose own batch 1 differs, and that has since published past 1.
    engine.buffer.set(1n, batchPayload(20));
    engine.lose(2, batchPayload(21));
    await engine.publish(3, batchPayload(22));
    await waitFor(() => sink.log.length === 4, "the clear and the live batch");

    expect(sink.log).toEqual([
      `apply ${tsOf(1)}`,
      `apply ${tsOf(2)}`,
      "clear undefined restart",
      `apply ${tsOf(22)}`,
    ]);
    expect(stream.state().replicas).toMatchObject([{ restarts: 1, clears: { restart: 1 } }]);
  });

  it("clears the replica when the replay endpoint does not answer in time", async () => {
    const engine = await startEngine({ replay: true });
    engine.replay = { silent: true };
    const stream = await subscribe(engine, { replayTimeoutMs: 100 });
    await engine.publish(0, batchPayload(1));
    await engine.publish(2, batchPayload(3));
    await engine.publish(3, batchPayload(4));
    await waitFor(() => sink.appliedTs.length === 3, "the live batches after the timeout");

    expect(engine.replayRequests).toEqual([0n]);
    expect(sink.log).toEqual([
      `apply ${tsOf(1)}`,
      "clear undefined gap",
      `apply ${tsOf(3)}`,
      `apply ${tsOf(4)}`,
    ]);
    expect(stream.state().replicas).toMatchObject([{ replayFailures: 1 }]);
  });

  it("clears the replica on a gap when no replay endpoint is configured, then goes on", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine);
    await engine.publish(0, batchPayload(1, [], 2));
    await engine.publish(5, batchPayload(2, [], 2));
    await engine.publish(6, batchPayload(3, [], 2));
    await waitFor(() => sink.appliedTs.length === 3, "three batches");

    expect(sink.log).toEqual([
      `apply ${tsOf(1)}`,
      "clear 2 gap",
      `apply ${tsOf(2)}`,
      `apply ${tsOf(3)}`,
    ]);
    expect(stream.state().replicas).toMatchObject([
      { rank: 2, lastSeq: 6, gaps: 1, replayFailures: 0, clears: { gap: 1, restart: 0 } },
    ]);
  });

  it("clears the replica as restarted when seq goes backwards, and restarts from there", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine);
    await engine.publish(41, batchPayload(1));
    await engine.publish(42, batchPayload(2));
    await engine.publish(0, batchPayload(3));
    await engine.publish(1, batchPayload(4));
    await waitFor(() => sink.appliedTs.length === 4, "four batches");

    expect(sink.log).toEqual([
      `apply ${tsOf(1)}`,
      `apply ${tsOf(2)}`,
      "clear undefined restart",
      `apply ${tsOf(3)}`,
      `apply ${tsOf(4)}`,
    ]);
    expect(stream.state().replicas).toMatchObject([{ lastSeq: 1, restarts: 1, gaps: 0 }]);
  });

  it("keeps the replicas alive while connected, and stops once the publisher vanishes", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine, { livenessWindowMs: 200 });
    await engine.publish(0, batchPayload(1));
    await waitFor(() => sink.appliedTs.length === 1, "the batch");
    const afterBatch = sink.calls.findIndex((call) => call.op === "apply") + 1;
    expect(sink.calls[afterBatch]).toEqual({
      op: "keepAlive",
      source: "pod-a",
      ranks: [undefined],
      until: clock.now() + 200,
    });
    const ticks = sink.keepAlives;
    await waitFor(() => sink.keepAlives >= ticks + 2, "keep-alives on the timer");

    engine.close();
    await waitFor(() => stream.state().connection === "disconnected", "the disconnection");
    // The last keep-alive is given as the stream goes: the window starts then.
    const last = sink.calls.at(-1);
    expect(last).toEqual({
      op: "keepAlive",
      source: "pod-a",
      ranks: [undefined],
      until: clock.now() + 200,
    });
    const atDisconnect = sink.keepAlives;
    await new Promise((resolve) => setTimeout(resolve, 200)); // four timer periods
    expect(sink.keepAlives).toBe(atDisconnect);
  });

  it("reconnects to a publisher that comes back on the same endpoint and goes on in order", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine, { livenessWindowMs: 200 });
    await engine.publish(0, batchPayload(1));
    await waitFor(() => sink.appliedTs.length === 1, "the first batch");
    engine.close();
    await waitFor(() => stream.state().connection === "disconnected", "the disconnection");
    const atDisconnect = sink.keepAlives;

    const again = await startEngine({ endpoint: engine.endpoint });
    await again.waitForSubscriber();
    await waitFor(() => stream.state().connection === "connected", "the reconnection");
    // The engine may be a new process that has not said so yet: nothing is vouched for until it
    // publishes again.
    await new Promise((resolve) => setTimeout(resolve, 100)); // two timer periods
    expect(sink.keepAlives).toBe(atDisconnect);
    await again.publish(1, batchPayload(2));
    await waitFor(() => sink.appliedTs.length === 2, "the batch after the reconnection");
    expect(sink.log).toEqual([`apply ${tsOf(1)}`, `apply ${tsOf(2)}`]);
    await waitFor(() => sink.keepAlives > atDisconnect, "keep-alives again");
  });

  describe("after a reconnection, with a replay endpoint", () => {
    /** Publishes batches 0..2, then replaces the engine with one on the same endpoints. */
    async function reconnectTo(buffer: (seq: number) => Uint8Array) {
      const engine = await startEngine({ replay: true });
      const stream = await subscribe(engine);
      for (let seq = 0; seq < 3; seq++) await engine.publish(seq, batchPayload(seq + 1));
      await waitFor(() => sink.appliedTs.length === 3, "the first batches");
      engine.close();
      await waitFor(() => stream.state().connection === "disconnected", "the disconnection");
      const again = await startEngine({
        endpoint: engine.endpoint,
        replayEndpoint: engine.replayEndpoint as string,
      });
      // What the engine published while the stream was away, seen only by its replay buffer.
      for (let seq = 0; seq < 3; seq++) again.lose(seq, buffer(seq));
      await again.waitForSubscriber();
      await waitFor(() => stream.state().connection === "connected", "the reconnection");
      return { stream, again };
    }

    it("clears a restarted engine's replica even when its new seq goes on from the old one", async () => {
      // A new process whose first three batches were published while the stream was away: its
      // next seq is the one the stream expects, and only the replay shows another history.
      const { stream, again } = await reconnectTo((seq) => batchPayload(seq + 11));
      await again.publish(3, batchPayload(14));
      await waitFor(() => sink.appliedTs.length === 4, "the batch after the reconnection");

      expect(again.replayRequests).toEqual([2n]);
      expect(sink.log).toEqual([
        `apply ${tsOf(1)}`,
        `apply ${tsOf(2)}`,
        `apply ${tsOf(3)}`,
        "clear undefined restart",
        `apply ${tsOf(14)}`,
      ]);
      expect(stream.state().replicas).toMatchObject([{ restarts: 1, lastSeq: 3, gaps: 0 }]);
    });

    it("goes on without clearing when the replay shows the same history", async () => {
      const { stream, again } = await reconnectTo((seq) => batchPayload(seq + 1));
      await again.publish(3, batchPayload(4));
      await again.publish(4, batchPayload(5));
      await waitFor(() => sink.appliedTs.length === 5, "the batches after the reconnection");

      expect(again.replayRequests).toEqual([2n]);
      expect(sink.log).toEqual([1, 2, 3, 4, 5].map((ts) => `apply ${tsOf(ts)}`));
      expect(stream.state().replicas).toMatchObject([{ restarts: 0, replayFailures: 0 }]);
    });

    it("checks again after a disconnection during a check", async () => {
      const { stream, again } = await reconnectTo((seq) => batchPayload(seq + 1));
      again.replay = { silent: true };
      await again.publish(3, batchPayload(4));
      await waitFor(() => again.replayRequests.length === 1, "the check's replay request");
      // The engine goes away while the stream waits for its replay (which times out).
      again.close();
      await waitFor(() => stream.state().connection === "disconnected", "the disconnection");
      await waitFor(() => sink.appliedTs.length === 4, "the batch, after the check failed");
      const third = await startEngine({
        endpoint: again.endpoint,
        replayEndpoint: again.replayEndpoint as string,
      });
      for (let seq = 0; seq < 4; seq++) third.lose(seq, batchPayload(seq + 1));
      await third.waitForSubscriber();
      await waitFor(() => stream.state().connection === "connected", "the second reconnection");
      await third.publish(4, batchPayload(5));
      await waitFor(() => sink.appliedTs.length === 5, "the batch after the second reconnection");

      // The batch applied after the failed check came from before the second disconnection.
      expect(third.replayRequests).toEqual([3n]);
      expect(sink.log.slice(3)).toEqual([
        "clear undefined gap",
        `apply ${tsOf(4)}`,
        `apply ${tsOf(5)}`,
      ]);
    });

    it("clears the replica when the replay cannot show the history", async () => {
      const { stream, again } = await reconnectTo((seq) => batchPayload(seq + 1));
      again.replay = { silent: true };
      await again.publish(3, batchPayload(4));
      await waitFor(() => sink.appliedTs.length === 4, "the batch after the reconnection");

      expect(sink.log.slice(3)).toEqual(["clear undefined gap", `apply ${tsOf(4)}`]);
      expect(stream.state().replicas).toMatchObject([{ replayFailures: 1, lastSeq: 3 }]);
    });
  });

  it("after a reconnection, vouches again only for the ranks that have published since", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine, { livenessWindowMs: 200 });
    await engine.publish(0, batchPayload(1, [], 0));
    await engine.publish(0, batchPayload(2, [], 1));
    await waitFor(() => sink.appliedTs.length === 2, "a batch of each rank");
    engine.close();
    await waitFor(() => stream.state().connection === "disconnected", "the disconnection");

    const again = await startEngine({ endpoint: engine.endpoint });
    await again.waitForSubscriber();
    await waitFor(() => stream.state().connection === "connected", "the reconnection");
    // Rank 0 restarted and says so; rank 1 stays silent, so nothing speaks for it.
    await again.publish(0, batchPayload(3, [], 0));
    await waitFor(() => sink.appliedTs.length === 3, "rank 0's batch after the reconnection");
    const from = sink.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 120)); // two timer periods
    const later = sink.calls.slice(from).filter((call) => call.op === "keepAlive");
    expect(later.length).toBeGreaterThan(0);
    for (const call of later) expect(call).toMatchObject({ ranks: [0] });
  });

  it("cancels a replay in progress when closed, and applies nothing after", async () => {
    const engine = await startEngine({ replay: true });
    engine.replay = { silent: true };
    const stream = await subscribe(engine, { replayTimeoutMs: 60_000 });
    await engine.publish(0, batchPayload(1));
    await engine.publish(2, batchPayload(3));
    await waitFor(() => engine.replayRequests.length === 1, "the replay request");
    const started = Date.now();
    await stream.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(sink.log).toEqual([`apply ${tsOf(1)}`]);
  });

  it("treats a batch the sink threw on as lost, and goes on", async () => {
    const engine = await startEngine();
    const logger = new RecordingLogger();
    const stream = await subscribe(engine, { logger });
    throwOnApply(sink, tsOf(2));
    await engine.publish(0, batchPayload(1));
    await engine.publish(1, batchPayload(2));
    await engine.publish(2, batchPayload(3));
    await waitFor(() => sink.appliedTs.length === 2, "the batches around the bad one");
    // The sink may have applied part of it: its replica is cleared like after any lost batch.
    expect(sink.log).toEqual([`apply ${tsOf(1)}`, "clear undefined gap", `apply ${tsOf(3)}`]);
    expect(logger.lines.filter((line) => line.level === "error")).toHaveLength(1);
    expect(stream.state().connection).toBe("connected");
  });

  it("starts again from the live batch when a gap's recovery fails unexpectedly", async () => {
    const engine = await startEngine();
    const logger = new RecordingLogger();
    const stream = await subscribe(
      engine,
      { logger },
      sourceFor(engine, { replayEndpoint: undefined }),
    );
    throwOnApply(sink, tsOf(2));
    await engine.publish(0, batchPayload(1));
    // Seq 1 is lost; the recovery clears the replica, then the sink throws on the live batch.
    await engine.publish(2, batchPayload(2));
    await engine.publish(3, batchPayload(3));
    await engine.publish(4, batchPayload(4));
    await waitFor(() => sink.appliedTs.length === 3, "the batches after the failed recovery");
    // One gap, not one per batch that follows: seq 3 and 4 follow the skipped live batch.
    expect(sink.log).toEqual([
      `apply ${tsOf(1)}`,
      "clear undefined gap",
      "clear undefined gap",
      `apply ${tsOf(3)}`,
      `apply ${tsOf(4)}`,
    ]);
    expect(stream.state().replicas).toMatchObject([{ lastSeq: 4, gaps: 1 }]);
  });

  it("stays disconnected when batches queued before the engine vanished are read after", async () => {
    const engine = await startEngine({ replay: true });
    engine.replay = { silent: true };
    const stream = await subscribe(engine, { replayTimeoutMs: 400, livenessWindowMs: 200 });
    await engine.publish(0, batchPayload(1));
    // Seq 1 is lost: while its replay waits, seq 3 and 4 queue up behind seq 2.
    await engine.publish(2, batchPayload(3));
    await engine.publish(3, batchPayload(4));
    await engine.publish(4, batchPayload(5));
    await waitFor(() => engine.replayRequests.length === 1, "the replay request");
    engine.close();
    await waitFor(() => stream.state().connection === "disconnected", "the disconnection");
    await waitFor(() => sink.appliedTs.length === 4, "the queued batches, read after the timeout");
    const afterQueue = sink.keepAlives;
    await new Promise((resolve) => setTimeout(resolve, 150)); // three timer periods
    expect(stream.state().connection).toBe("disconnected");
    expect(sink.keepAlives).toBe(afterQueue);
  });

  it("stays connecting while the endpoint accepts connections but never speaks ZMTP", async () => {
    // A port behind a proxy, say: every connection accepted and closed at once.
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    const logger = new RecordingLogger();
    try {
      sink = new RecordingSink();
      const stream = createZmqKvEventStream({
        source: kvEventSource({ endpoint: `tcp://127.0.0.1:${port}` }),
        sink,
        clock: new ManualClock(),
        reconnectIntervalMs: 20,
        reconnectMaxIntervalMs: 40,
        logger,
      });
      streams.push(stream);
      await new Promise((resolve) => setTimeout(resolve, 300)); // several attempts
      expect(stream.state().connection).toBe("connecting");
      expect(logger.lines.map((line) => line.message)).not.toContain(
        "lost the engine's KV-event stream; reconnecting",
      );
    } finally {
      server.close();
    }
  });

  it("when reading fails, stops vouching as for a lost connection, and reads again", async () => {
    const engine = await startEngine();
    const logger = new RecordingLogger();
    const stream = await subscribe(engine, { logger, livenessWindowMs: 200 });
    await engine.publish(0, batchPayload(1));
    await waitFor(() => sink.appliedTs.length === 1, "the first batch");
    // The receive already waiting gets the next message; the one after it fails, once. (zeromq
    // defines receive() read-only, further up the chain: an own property shadows it.)
    const restore = () => Reflect.deleteProperty(Subscriber.prototype, "receive");
    Object.defineProperty(Subscriber.prototype, "receive", {
      configurable: true,
      value: () => {
        restore();
        return Promise.reject(new Error("a socket error"));
      },
    });
    try {
      await engine.publish(1, batchPayload(2));
      await waitFor(() => stream.state().connection === "disconnected", "the failed read");
    } finally {
      restore();
    }
    expect(sink.appliedTs).toHaveLength(2);
    expect(logger.lines.filter((line) => line.level === "error")).toMatchObject([
      {
        message: "reading the KV-event stream failed; treated as a lost connection, reading again",
      },
    ]);
    const atFailure = sink.keepAlives;
    await new Promise((resolve) => setTimeout(resolve, 120)); // two timer periods
    expect(sink.keepAlives).toBe(atFailure);

    await engine.publish(2, batchPayload(3));
    await waitFor(() => sink.appliedTs.length === 3, "the batch after the failure");
    expect(stream.state().connection).toBe("connected");
    await waitFor(() => sink.keepAlives > atFailure, "keep-alives again");
  });

  it("applies nothing after close() resolves", async () => {
    const engine = await startEngine();
    const stream = await subscribe(engine);
    await stream.close();
    await engine.publish(0, batchPayload(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sink.calls.filter((call) => call.op !== "keepAlive")).toEqual([]);
    await stream.close(); // idempotent
  });
});
