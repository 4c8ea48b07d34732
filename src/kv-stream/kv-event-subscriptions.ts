import type { KvEventSink } from "../kv-events/kv-event-sink.js";
import type { KvEventSource } from "../kv-events/kv-event-source.js";
import type { KvEventStream, KvEventStreamState } from "./kv-event-stream.js";

/** Options for {@link createKvEventSubscriptions}. */
export interface KvEventSubscriptionsOptions {
  /** The sink the streams feed; told to clear the replicas of sources that leave. */
  readonly sink: KvEventSink;
  /** Starts reading one source (in production `createZmqKvEventStream` with the shared options). */
  readonly createStream: (source: KvEventSource) => KvEventStream;
}

/** What a reload changed, by source name. */
export interface KvEventReloadOutcome {
  readonly added: readonly string[];
  /** Sources whose configuration changed: stopped, cleared and started again. */
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  readonly unchanged: readonly string[];
  /**
   * Sources whose stream could not be started (creating it threw); they are not running. A changed
   * source that fails is also in `changed`: its old stream was stopped and cleared.
   */
  readonly failed: readonly { readonly name: string; readonly error: unknown }[];
}

/** The set of engine streams the sidecar reads, kept in step with the configured sources. */
export interface KvEventSubscriptions {
  /**
   * Makes the running streams match `sources` (names unique), comparing by name: a new name starts
   * a stream; a name that is gone stops its stream, then clears every replica behind it
   * (`sink.clear(source, undefined, "removed")`); a name whose configuration changed in any field
   * is stopped and cleared the same way and started again; an unchanged one keeps running, its
   * state untouched. Reloads run one after another in call order. Rejects after `close()`.
   */
  reload(sources: readonly KvEventSource[]): Promise<KvEventReloadOutcome>;
  /** Every stream's state, in configuration order. O(streams + ranks). */
  states(): KvEventStreamState[];
  /** Stops every stream (without clearing: the process is going away). Idempotent. */
  close(): Promise<void>;
}

/** Creates an empty {@link KvEventSubscriptions}; the first `reload()` starts the streams. */
export function createKvEventSubscriptions(
  options: KvEventSubscriptionsOptions,
): KvEventSubscriptions {
  return new StreamSet(options);
}

class StreamSet implements KvEventSubscriptions {
  readonly #sink: KvEventSink;
  readonly #createStream: (source: KvEventSource) => KvEventStream;
  /** By source name, in configuration order. */
  #streams = new Map<string, KvEventStream>();
  /** The last reload (or close) queued: each waits for the one before. Never rejects. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: KvEventSubscriptionsOptions) {
    this.#sink = options.sink;
    this.#createStream = options.createStream;
  }

  reload(sources: readonly KvEventSource[]): Promise<KvEventReloadOutcome> {
    if (this.#closed) return Promise.reject(new Error("the subscriptions are closed"));
    const done = this.#queue.then(() => this.#reload(sources));
    this.#queue = done.catch(() => undefined);
    return done;
  }

  states(): KvEventStreamState[] {
    return [...this.#streams.values()].map((stream) => stream.state());
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#queue = this.#queue.then(async () => {
        const streams = [...this.#streams.values()];
        this.#streams = new Map();
        await Promise.all(streams.map((stream) => stream.close()));
      });
    }
    return this.#queue.then(() => undefined);
  }

  async #reload(sources: readonly KvEventSource[]): Promise<KvEventReloadOutcome> {
    if (this.#closed) throw new Error("the subscriptions are closed");
    const wanted = new Map(sources.map((source) => [source.name, source]));
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    const unchanged: string[] = [];
    const failed: { name: string; error: unknown }[] = [];
    const leaving: KvEventStream[] = [];
    for (const [name, stream] of this.#streams) {
      const next = wanted.get(name);
      if (next === undefined) {
        removed.push(name);
        leaving.push(stream);
      } else if (!sameSource(stream.source, next)) {
        changed.push(name);
        leaving.push(stream);
      }
    }
    // Stopped before clearing, so that nothing a closing stream still delivers lands after the clear.
    await Promise.all(leaving.map((stream) => stream.close()));
    for (const stream of leaving) this.#sink.clear(stream.source, undefined, "removed");

    const streams = new Map<string, KvEventStream>();
    for (const source of sources) {
      const running = this.#streams.get(source.name);
      if (running !== undefined && sameSource(running.source, source)) {
        unchanged.push(source.name);
        streams.set(source.name, running);
        continue;
      }
      try {
        streams.set(source.name, this.#createStream(source));
        if (running === undefined) added.push(source.name);
      } catch (error) {
        failed.push({ name: source.name, error });
      }
    }
    this.#streams = streams;
    return { added, changed, removed, unchanged, failed };
  }
}

// Keyed by every field of KvEventSource, so a field added there without being compared here does
// not compile.
const SOURCE_FIELDS = Object.keys({
  name: true,
  engine: true,
  endpoint: true,
  replayEndpoint: true,
  topic: true,
  tenant: true,
  model: true,
  hashScheme: true,
  blockSize: true,
  replicaId: true,
  replicaIdTemplate: true,
} satisfies Record<keyof KvEventSource, true>) as (keyof KvEventSource)[];

function sameSource(a: KvEventSource, b: KvEventSource): boolean {
  return SOURCE_FIELDS.every((field) => a[field] === b[field]);
}
