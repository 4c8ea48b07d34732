import { type ChildProcessByStdio, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { KvEventStream } from "../../src/kv-stream/kv-event-stream.js";
import { createZmqKvEventStream } from "../../src/kv-stream/zmq-kv-event-stream.js";
import { RecordingSink } from "../kv-stream/recording-sink.js";
import { eventForm } from "../support/kv-event-form.js";
import { kvEventSource } from "../support/kv-event-source.js";
import { ManualClock } from "../support/manual-clock.js";
import { waitFor } from "../support/wait-for.js";

const PUBLISHER = fileURLToPath(new URL("python/kv_events_publisher.py", import.meta.url));

// Debian's python3-zmq and python3-msgpack, installed by `make test` (system-deps): a ZMQ and
// msgpack stack that shares no code with the sidecar's, publishing the way a vLLM engine does.
describe("an independent publisher (python3-zmq, python3-msgpack)", () => {
  let publisher: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  let stream: KvEventStream | undefined;

  afterEach(async () => {
    await stream?.close();
    if (publisher?.pid !== undefined && publisher.exitCode === null) {
      process.kill(publisher.pid, "SIGKILL");
    }
    publisher = undefined;
  });

  it("feeds the stream every batch of the current map layout, decoded exactly", async () => {
    const child = spawn("/usr/bin/python3", [PUBLISHER, "kv-events"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    publisher = child;
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout }).on("line", (line) => lines.push(JSON.parse(line)));
    await waitFor(
      () => lines.length > 0 || child.exitCode !== null,
      `the publisher to bind (${stderr})`,
    );
    const endpoint = lines[0]?.endpoint as string;

    const sink = new RecordingSink();
    stream = createZmqKvEventStream({
      source: kvEventSource({
        name: "py-engine",
        endpoint,
        topic: "kv-events",
        replicaId: "py-pod",
      }),
      sink,
      clock: new ManualClock(),
    });
    await waitFor(() => sink.appliedTs.length === 4, `four batches (${stderr})`);
    // The publisher's report of what it sent can reach us after the batches themselves.
    await waitFor(() => lines.length > 1, `the publisher's count of batches sent (${stderr})`);

    expect(lines[1]).toEqual({ sent: 4 });
    const batches = sink.calls.flatMap((call) => (call.op === "apply" ? [call.batch] : []));
    expect(batches.map((batch) => [batch.ts, batch.dataParallelRank, batch.skippedEvents])).toEqual(
      [
        [1767225600.25, 1, 0],
        [1767225600.5, 1, 0],
        [1767225600.75, 1, 1],
        [1767225601.0, 1, 0],
      ],
    );
    expect(batches.map((batch) => batch.events.map(eventForm))).toEqual([
      [
        {
          type: "BlockStored",
          block_hashes: ["0000000000000001", "0020000000000001", "ffffffffffffffff"],
          parent_block_hash: null,
          token_count: 48,
          block_size: 16,
          medium: "GPU",
          lora_name: null,
        },
      ],
      [
        {
          type: "BlockStored",
          block_hashes: ["ffffffffffffffff"],
          parent_block_hash: null,
          token_count: 0,
          block_size: 16,
          medium: "CPU",
          lora_name: null,
        },
      ],
      [
        { type: "BlockRemoved", block_hashes: ["0000000000000001"], medium: "GPU" },
        { type: "AllBlocksCleared" },
      ],
      [
        {
          type: "BlockStored",
          block_hashes: ["000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"],
          parent_block_hash: null,
          token_count: 16,
          block_size: 16,
          medium: "GPU",
          lora_name: "sql-lora",
        },
      ],
    ]);
    expect(stream.state()).toMatchObject({
      connection: "connected",
      framingErrors: 0,
      decodeErrors: 0,
      replicas: [{ rank: 1, replicaId: "py-pod/dp1", lastSeq: 3, batches: 4 }],
    });
  });
});
