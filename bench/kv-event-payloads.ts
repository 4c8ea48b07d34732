/**
 * KV-event payloads for the stream benchmark, in vLLM's current layout (docs/vllm-kv-events.md):
 * the batch `[ts, events, data_parallel_rank]`, each event a map tagged by "type".
 */
import { encodeMsgpack, MsgpackFloat, MsgpackInt, MsgpackMap } from "./msgpack-encoder.js";

/** One engine step: store a chain of new blocks after `parent`, evict an older chain. */
export interface BenchBatch {
  readonly ts: number;
  readonly stored: readonly bigint[];
  readonly parent: bigint | undefined;
  readonly blockSize: number;
  readonly removed: readonly bigint[];
}

/** Encodes `batch` as msgpack: `[ts, [BlockStored{...}, BlockRemoved{...}], nil]`. */
export function encodeBenchBatch(batch: BenchBatch): Uint8Array {
  // Hashes in the 9-byte form, as vLLM's 64-bit hashes mostly are.
  const hashes = (values: readonly bigint[]) => values.map((v) => new MsgpackInt(v, "uint64"));
  const tokens = batch.stored.length * batch.blockSize;
  return encodeMsgpack([
    new MsgpackFloat(batch.ts),
    [
      MsgpackMap.of({
        type: "BlockStored",
        block_hashes: hashes(batch.stored),
        parent_block_hash:
          batch.parent === undefined ? null : new MsgpackInt(batch.parent, "uint64"),
        token_ids: Array.from({ length: tokens }, (_, i) => 1000 + ((i * 7919) % 30000)),
        block_size: batch.blockSize,
        medium: "GPU",
      }),
      MsgpackMap.of({ type: "BlockRemoved", block_hashes: hashes(batch.removed), medium: "GPU" }),
    ],
    null,
  ]);
}
