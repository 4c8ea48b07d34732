import { Router, XPublisher } from "zeromq";
import { encodeMsgpack, MsgpackMap, type MsgpackValue } from "../../bench/msgpack-encoder.js";

const END_SEQ = 0xffff_ffff_ffff_ffffn;

/** An event in vLLM's current layout: a map tagged by "type" (docs/vllm-kv-events.md). */
export function blockStored(hashes: readonly bigint[], parent: bigint | null = null): MsgpackMap {
  return MsgpackMap.of({
    type: "BlockStored",
    block_hashes: [...hashes],
    parent_block_hash: parent,
    token_ids: hashes.flatMap(() => Array.from({ length: 16 }, (_, i) => i)),
    block_size: 16,
    medium: "GPU",
    lora_name: null,
  });
}

export function blockRemoved(hashes: readonly bigint[]): MsgpackMap {
  return MsgpackMap.of({ type: "BlockRemoved", block_hashes: [...hashes], medium: "GPU" });
}

/** A payload frame: the batch `[ts, events, data_parallel_rank]`. */
export function batchPayload(
  ts: number,
  events: readonly MsgpackValue[] = [],
  rank: number | null = null,
): Uint8Array {
  return encodeMsgpack([ts + 0.5, [...events], rank]);
}

/** The `ts` a test batch numbered `ts` decodes to (never an integer, so msgpack writes a float). */
export const tsOf = (ts: number) => ts + 0.5;

export function seqFrame(seq: number | bigint): Uint8Array {
  const frame = new Uint8Array(8);
  new DataView(frame.buffer).setBigUint64(0, BigInt(seq));
  return frame;
}

/** How the fake engine answers replay requests. */
export interface ReplayBehaviour {
  /** `["", seq, payload]` (older vLLM, SGLang) or `["", topic, seq, payload]` (vLLM 0.26 on). @default 4 */
  frames?: 3 | 4;
  /** Never answer (a hung engine). @default false */
  silent?: boolean;
}

/**
 * An engine's KV-event sockets as vLLM's publisher has them, on loopback ephemeral ports: a PUB
 * (here an XPUB, which is a PUB on the wire and also tells when a subscriber's subscription has
 * arrived, so tests do not race ZMQ's slow-joiner window) and, optionally, the replay ROUTER
 * answering from a buffer of every batch "published", including those the test pretends were lost.
 */
export class FakeEngine {
  readonly endpoint: string;
  readonly replayEndpoint: string | undefined;
  readonly topic: string;
  /** The start seqs of the replay requests received. */
  readonly replayRequests: bigint[] = [];
  /** What the replay buffer holds, by seq; tests may edit it. */
  readonly buffer = new Map<bigint, Uint8Array>();
  replay: ReplayBehaviour = {};
  readonly #publisher: XPublisher;
  readonly #router: Router | undefined;
  #subscriptions = 0;

  private constructor(
    publisher: XPublisher,
    router: Router | undefined,
    endpoint: string,
    topic: string,
  ) {
    this.#publisher = publisher;
    this.#router = router;
    this.endpoint = endpoint;
    this.replayEndpoint = router?.lastEndpoint ?? undefined;
    this.topic = topic;
    void this.#readSubscriptions();
    if (router !== undefined) void this.#serveReplays(router);
  }

  /**
   * Binds the engine's sockets; `endpoint` and `replayEndpoint` rebind those of an engine that
   * vanished, on the same ports (a `replayEndpoint` implies `replay`).
   */
  static async start(
    options: { replay?: boolean; topic?: string; endpoint?: string; replayEndpoint?: string } = {},
  ): Promise<FakeEngine> {
    const publisher = new XPublisher({ linger: 0, verbosity: "allSubs" });
    await publisher.bind(options.endpoint ?? "tcp://127.0.0.1:*");
    let router: Router | undefined;
    if (options.replay || options.replayEndpoint !== undefined) {
      router = new Router({ linger: 0 });
      await router.bind(options.replayEndpoint ?? "tcp://127.0.0.1:*");
    }
    return new FakeEngine(publisher, router, publisher.lastEndpoint ?? "", options.topic ?? "");
  }

  /** Resolves once `count` subscriptions (one per subscriber connection) have arrived. */
  async waitForSubscriber(count = 1): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (this.#subscriptions < count) {
      if (Date.now() > deadline) throw new Error("no subscriber subscribed within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Publishes batch `seq` live and keeps it for replay. */
  async publish(seq: number | bigint, payload: Uint8Array): Promise<void> {
    this.buffer.set(BigInt(seq), payload);
    await this.#publisher.send([this.topic, seqFrame(seq), payload]);
  }

  /** Keeps batch `seq` for replay without publishing it: the subscriber never sees it live. */
  lose(seq: number | bigint, payload: Uint8Array): void {
    this.buffer.set(BigInt(seq), payload);
  }

  /** Sends arbitrary frames on the live stream. */
  async sendFrames(frames: readonly (Uint8Array | string)[]): Promise<void> {
    await this.#publisher.send([...frames]);
  }

  close(): void {
    this.#publisher.close();
    this.#router?.close();
  }

  async #readSubscriptions(): Promise<void> {
    try {
      for await (const [message] of this.#publisher) {
        if (message?.[0] === 1) this.#subscriptions++;
      }
    } catch {
      // closed
    }
  }

  /** vLLM's replay loop: `[id, "", start]` in, every buffered batch from `start` on, then END. */
  async #serveReplays(router: Router): Promise<void> {
    try {
      for await (const [id, delimiter, start] of router) {
        if (id === undefined || delimiter?.length !== 0 || start?.length !== 8) continue;
        const from = Buffer.from(start).readBigUInt64BE(0);
        this.replayRequests.push(from);
        if (this.replay.silent) continue;
        const topic = this.replay.frames === 3 ? [] : [this.topic];
        const seqs = [...this.buffer.keys()].filter((seq) => seq >= from).sort(compareBigInt);
        for (const seq of seqs) {
          await router.send([id, "", ...topic, seqFrame(seq), this.buffer.get(seq) as Uint8Array]);
        }
        await router.send([id, "", ...topic, seqFrame(END_SEQ), ""]);
      }
    } catch {
      // closed
    }
  }
}

function compareBigInt(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
