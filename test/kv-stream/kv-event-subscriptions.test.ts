import { afterEach, describe, expect, it } from "vitest";
import type { KvEventSource } from "../../src/kv-events/kv-event-source.js";
import type { KvEventStream, KvEventStreamState } from "../../src/kv-stream/kv-event-stream.js";
import {
  createKvEventSubscriptions,
  type KvEventSubscriptions,
} from "../../src/kv-stream/kv-event-subscriptions.js";
import { createZmqKvEventStream } from "../../src/kv-stream/zmq-kv-event-stream.js";
import { kvEventSource } from "../support/kv-event-source.js";
import { ManualClock } from "../support/manual-clock.js";
import { waitFor } from "../support/wait-for.js";
import { batchPayload, FakeEngine, tsOf } from "./fake-engine.js";
import { RecordingSink } from "./recording-sink.js";

function source(name: string, overrides: Partial<KvEventSource> = {}): KvEventSource {
  return kvEventSource({ name, endpoint: `tcp://${name}:5557`, replicaId: name, ...overrides });
}

/** A stream that records its life in a shared log, and closes only when the test says so. */
class FakeStream implements KvEventStream {
  readonly source: KvEventSource;
  readonly #log: string[];
  closed = false;

  constructor(source: KvEventSource, log: string[]) {
    this.source = source;
    this.#log = log;
    log.push(`start ${source.name} ${source.endpoint}`);
  }

  state(): KvEventStreamState {
    return {
      source: this.source,
      connection: "connecting",
      framingErrors: 0,
      decodeErrors: 0,
      replicas: [],
    };
  }

  async close(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (!this.closed) this.#log.push(`close ${this.source.name}`);
    this.closed = true;
  }
}

describe("createKvEventSubscriptions()", () => {
  let subscriptions: KvEventSubscriptions | undefined;
  const engines: FakeEngine[] = [];

  afterEach(async () => {
    await subscriptions?.close();
    subscriptions = undefined;
    for (const engine of engines.splice(0)) engine.close();
  });

  /** Subscriptions over fake streams; `log` interleaves stream starts and closes with clears. */
  function withFakeStreams() {
    const log: string[] = [];
    const sink = new RecordingSink();
    const streams: FakeStream[] = [];
    const created = createKvEventSubscriptions({
      sink: {
        apply: (s, batch) => sink.apply(s, batch),
        keepAlive: (s, ranks, until) => sink.keepAlive(s, ranks, until),
        clear: (s, rank, reason) => log.push(`clear ${s.name} ${rank} ${reason}`),
      },
      createStream: (s) => {
        const stream = new FakeStream(s, log);
        streams.push(stream);
        return stream;
      },
    });
    subscriptions = created;
    return { subscriptions: created, log, streams };
  }

  it("starts a stream per source, in configuration order", async () => {
    const { subscriptions, log } = withFakeStreams();
    const outcome = await subscriptions.reload([source("a"), source("b")]);
    expect(outcome).toEqual({
      added: ["a", "b"],
      changed: [],
      removed: [],
      unchanged: [],
      failed: [],
    });
    expect(log).toEqual(["start a tcp://a:5557", "start b tcp://b:5557"]);
    expect(subscriptions.states().map((state) => state.source.name)).toEqual(["a", "b"]);
  });

  it("stops a removed source's stream, then clears every replica behind it", async () => {
    const { subscriptions, log } = withFakeStreams();
    await subscriptions.reload([source("a"), source("b")]);
    log.length = 0;
    const outcome = await subscriptions.reload([source("b")]);
    expect(outcome).toMatchObject({ removed: ["a"], unchanged: ["b"], added: [], changed: [] });
    expect(log).toEqual(["close a", "clear a undefined removed"]);
    expect(subscriptions.states().map((state) => state.source.name)).toEqual(["b"]);
  });

  it("restarts a source whose configuration changed, clearing it in between", async () => {
    const { subscriptions, log, streams } = withFakeStreams();
    await subscriptions.reload([source("a")]);
    log.length = 0;
    await subscriptions.reload([source("a", { endpoint: "tcp://a:6000" })]);
    expect(log).toEqual(["close a", "clear a undefined removed", "start a tcp://a:6000"]);
    expect(streams).toHaveLength(2);
    expect(subscriptions.states()[0]?.source.endpoint).toBe("tcp://a:6000");
  });

  it("leaves an unchanged source's stream running", async () => {
    const { subscriptions, log, streams } = withFakeStreams();
    await subscriptions.reload([source("a")]);
    const outcome = await subscriptions.reload([{ ...source("a") }, source("c")]);
    expect(outcome).toMatchObject({ unchanged: ["a"], added: ["c"] });
    expect(streams[0]?.closed).toBe(false);
    expect(log).toEqual(["start a tcp://a:5557", "start c tcp://c:5557"]);
  });

  it("runs reloads one after another, in call order", async () => {
    const { subscriptions, log } = withFakeStreams();
    const first = subscriptions.reload([source("a")]);
    const second = subscriptions.reload([]);
    const third = subscriptions.reload([source("b")]);
    await Promise.all([first, second, third]);
    expect(log).toEqual([
      "start a tcp://a:5557",
      "close a",
      "clear a undefined removed",
      "start b tcp://b:5557",
    ]);
  });

  it("reports a source whose stream cannot start, and keeps the others", async () => {
    const log: string[] = [];
    const created = createKvEventSubscriptions({
      sink: new RecordingSink(),
      createStream: (s) => {
        if (s.name === "bad") throw new Error("cannot connect");
        return new FakeStream(s, log);
      },
    });
    subscriptions = created;
    const outcome = await created.reload([source("bad"), source("good")]);
    expect(outcome.added).toEqual(["good"]);
    expect(outcome.failed.map((f) => [f.name, (f.error as Error).message])).toEqual([
      ["bad", "cannot connect"],
    ]);
    expect(created.states().map((state) => state.source.name)).toEqual(["good"]);
  });

  it("closes every stream without clearing, and refuses reloads afterwards", async () => {
    const { subscriptions, log, streams } = withFakeStreams();
    await subscriptions.reload([source("a"), source("b")]);
    await subscriptions.close();
    expect(streams.every((stream) => stream.closed)).toBe(true);
    expect(log.filter((line) => line.startsWith("clear"))).toEqual([]);
    expect(subscriptions.states()).toEqual([]);
    await expect(subscriptions.reload([source("a")])).rejects.toThrow("closed");
    await subscriptions.close(); // idempotent
  });

  it("feeds a real engine's batches while configured, and clears it once removed", async () => {
    const engine = await FakeEngine.start();
    engines.push(engine);
    const sink = new RecordingSink();
    const clock = new ManualClock();
    subscriptions = createKvEventSubscriptions({
      sink,
      createStream: (s) => createZmqKvEventStream({ source: s, sink, clock }),
    });
    const configured = source("pod-a", { endpoint: engine.endpoint });
    await subscriptions.reload([configured]);
    await engine.waitForSubscriber();
    await engine.publish(0, batchPayload(1));
    await waitFor(() => sink.appliedTs.length === 1, "the batch");

    await subscriptions.reload([]);
    await engine.publish(1, batchPayload(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sink.log).toEqual([`apply ${tsOf(1)}`, "clear undefined removed"]);
  });
});
