import { describe, expect, it } from "vitest";
import {
  encodeSeq,
  type FramedBatch,
  REPLAY_END_SEQ,
  readLiveFrames,
  readReplayFrames,
} from "../../src/kv-stream/kv-event-frames.js";

const text = (s: string) => new TextEncoder().encode(s);
const seq = (n: bigint) => encodeSeq(n);
const payload = Uint8Array.of(0x93, 0x01, 0x90, 0xc0);
const empty = new Uint8Array(0);

describe("readLiveFrames()", () => {
  it.each<[string, Uint8Array[], FramedBatch]>([
    ["reads [topic, seq, payload]", [text("kv"), seq(7n), payload], { seq: 7n, payload }],
    ["reads an empty topic", [empty, seq(0n), payload], { seq: 0n, payload }],
    [
      "reads a seq above 2^53",
      [empty, seq(2n ** 63n + 5n), payload],
      { seq: 2n ** 63n + 5n, payload },
    ],
    [
      "rejects 2 frames",
      [seq(1n), payload],
      { error: "expected 3 frames [topic, seq, payload], got 2" },
    ],
    [
      "rejects 4 frames",
      [empty, seq(1n), payload, payload],
      { error: "expected 3 frames [topic, seq, payload], got 4" },
    ],
    [
      "rejects a 4-byte seq",
      [empty, new Uint8Array(4), payload],
      { error: "expected an 8-byte seq frame, got 4 bytes" },
    ],
  ])("%s", (_, frames, expected) => {
    expect(readLiveFrames(frames)).toEqual(expected);
  });

  it("reads the seq of a frame that is a view into a larger buffer", () => {
    const backing = new Uint8Array(20);
    backing.set(seq(258n), 5);
    expect(readLiveFrames([empty, backing.subarray(5, 13), payload]).seq).toBe(258n);
  });
});

describe("readReplayFrames()", () => {
  it.each<[string, Uint8Array[], FramedBatch]>([
    [
      'reads ["", seq, payload] (vLLM before 0.26, SGLang)',
      [empty, seq(3n), payload],
      { seq: 3n, payload },
    ],
    [
      'reads ["", topic, seq, payload] (vLLM 0.26 on)',
      [empty, text("kv"), seq(3n), payload],
      { seq: 3n, payload },
    ],
    [
      "reads the 3-frame end marker",
      [empty, seq(REPLAY_END_SEQ), empty],
      { seq: REPLAY_END_SEQ, payload: empty },
    ],
    [
      "reads the 4-frame end marker",
      [empty, empty, seq(REPLAY_END_SEQ), empty],
      { seq: REPLAY_END_SEQ, payload: empty },
    ],
    [
      "rejects a missing delimiter",
      [text("x"), seq(3n), payload],
      { error: "expected an empty delimiter as the first replay frame" },
    ],
    [
      "rejects 2 frames",
      [empty, seq(3n)],
      { error: 'expected 3 or 4 replay frames ["", (topic,) seq, payload], got 2' },
    ],
    [
      "rejects a short seq",
      [empty, text("kv"), Uint8Array.of(3), payload],
      { error: "expected an 8-byte seq frame, got 1 bytes" },
    ],
  ])("%s", (_, frames, expected) => {
    expect(readReplayFrames(frames)).toEqual(expected);
  });
});

describe("encodeSeq()", () => {
  it("writes 8 bytes big-endian, as the engines' replay request expects", () => {
    expect([...encodeSeq(0x0102_0304_0506_0708n)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...encodeSeq(REPLAY_END_SEQ)]).toEqual(Array(8).fill(0xff));
  });
});
