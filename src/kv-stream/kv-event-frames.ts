/**
 * The ZMQ framing of the engines' KV-event messages (docs/vllm-kv-events.md): which frame is the
 * sequence number and which the payload, on the live stream and in replay replies. Pure: frames in,
 * values out, no I/O.
 */

/** The seq of the replay end marker: 2^64 - 1, which no batch carries. */
export const REPLAY_END_SEQ = 0xffff_ffff_ffff_ffffn;

/** One message's sequence number and payload, or why the frames are not a message. */
export type FramedBatch =
  | { readonly seq: bigint; readonly payload: Uint8Array; readonly error?: undefined }
  | { readonly error: string; readonly seq?: undefined; readonly payload?: undefined };

/**
 * Reads a live message: exactly 3 frames `[topic, seq, payload]`, `seq` 8 bytes big-endian
 * unsigned. The topic is not checked: the subscription already filtered on it.
 */
export function readLiveFrames(frames: readonly Uint8Array[]): FramedBatch {
  if (frames.length !== 3) {
    return { error: `expected 3 frames [topic, seq, payload], got ${frames.length}` };
  }
  return readSeqAndPayload(frames[1] as Uint8Array, frames[2] as Uint8Array);
}

/**
 * Reads one reply a DEALER receives from an engine's replay ROUTER: `["", seq, payload]` (vLLM before
 * 0.26, SGLang) or `["", topic, seq, payload]` (vLLM 0.26 on). The end marker reads as a batch whose
 * seq is {@link REPLAY_END_SEQ}.
 */
export function readReplayFrames(frames: readonly Uint8Array[]): FramedBatch {
  if (frames.length !== 3 && frames.length !== 4) {
    return {
      error: `expected 3 or 4 replay frames ["", (topic,) seq, payload], got ${frames.length}`,
    };
  }
  if ((frames[0] as Uint8Array).length !== 0) {
    return { error: "expected an empty delimiter as the first replay frame" };
  }
  const last = frames.length - 1;
  return readSeqAndPayload(frames[last - 1] as Uint8Array, frames[last] as Uint8Array);
}

/** The frame a replay request's start seq travels in: 8 bytes, big-endian. */
export function encodeSeq(seq: bigint): Uint8Array {
  const frame = new Uint8Array(8);
  new DataView(frame.buffer).setBigUint64(0, seq);
  return frame;
}

function readSeqAndPayload(seqFrame: Uint8Array, payload: Uint8Array): FramedBatch {
  if (seqFrame.length !== 8) {
    return { error: `expected an 8-byte seq frame, got ${seqFrame.length} bytes` };
  }
  const seq = new DataView(seqFrame.buffer, seqFrame.byteOffset, 8).getBigUint64(0);
  return { seq, payload };
}
