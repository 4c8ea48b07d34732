/**
 * The stream benchmark's engines, in a process of their own (so that producing the load does not
 * take the measured process's CPU): `streams` XPUB sockets on loopback (an XPUB is a PUB on the
 * wire, and reports when the subscriber's subscription has arrived), each publishing
 * `batchesPerStream` batches `[topic, seq, payload]` with fresh block hashes, round-robin over the
 * streams, without a high-water mark so that nothing is dropped.
 *
 * Protocol (stdout, one JSON object per line): `{"endpoints": [...]}` once bound, then, once every
 * stream has a subscriber, `{"sending": true}`; once everything is sent it writes `doneFile` (a file,
since the benchmark's event loop is blocked meanwhile). It exits when stdin closes.
 * Argument: JSON {@link KvEventPublisherOptions}.
 */
import { writeFileSync } from "node:fs";
import { XPublisher } from "zeromq";
import { encodeBenchBatch } from "./kv-event-payloads.js";

/** What the benchmark asks of the publisher process. */
export interface KvEventPublisherOptions {
  readonly streams: number;
  readonly batchesPerStream: number;
  /** Blocks stored per batch; as many of an older chain are removed once the cache is warm. */
  readonly blocksPerBatch: number;
  /** Chains each engine keeps before it starts evicting its oldest. */
  readonly chainsKept: number;
  /** Written (with the seconds sending took) once every message is sent. */
  readonly doneFile: string;
}

const options = JSON.parse(process.argv[2] ?? "{}") as KvEventPublisherOptions;
const BLOCK_SIZE = 16;

const sockets: XPublisher[] = [];
for (let s = 0; s < options.streams; s++) {
  const socket = new XPublisher({ linger: 0, sendHighWaterMark: 0 });
  await socket.bind("tcp://127.0.0.1:*");
  sockets.push(socket);
}
console.log(JSON.stringify({ endpoints: sockets.map((socket) => socket.lastEndpoint) }));
/** Block `i` of chain `chain` of stream `stream`: unique across streams and chains. */
const hashOf = (stream: number, chain: number, i: number) =>
  (BigInt(stream + 1) << 48n) | (BigInt(chain) << 16n) | BigInt(i);
const chainOf = (stream: number, chain: number) =>
  Array.from({ length: options.blocksPerBatch }, (_, i) => hashOf(stream, chain, i));

// Every message is built before the clock starts, so that the publisher sends much faster than
// the subscriber can apply, and the subscriber is what the benchmark measures.
const messages: [number, Uint8Array, Uint8Array][] = [];
for (let chain = 0; chain < options.batchesPerStream; chain++) {
  for (let s = 0; s < options.streams; s++) {
    const payload = encodeBenchBatch({
      ts: Date.now() / 1000,
      stored: chainOf(s, chain),
      parent: chain === 0 ? undefined : hashOf(s, chain - 1, options.blocksPerBatch - 1),
      blockSize: BLOCK_SIZE,
      removed: chain >= options.chainsKept ? chainOf(s, chain - options.chainsKept) : [],
    });
    const seqFrame = new Uint8Array(8);
    new DataView(seqFrame.buffer).setBigUint64(0, BigInt(chain));
    messages.push([s, seqFrame, payload]);
  }
}
await Promise.all(sockets.map((socket) => socket.receive())); // one subscription each
console.log(JSON.stringify({ sending: true }));

const start = performance.now();
for (const [s, seqFrame, payload] of messages) {
  await (sockets[s] as XPublisher).send(["", seqFrame, payload]);
}
writeFileSync(options.doneFile, String((performance.now() - start) / 1000));

process.stdin.resume();
process.stdin.on("end", () => {
  for (const socket of sockets) socket.close();
  process.exit(0);
});
