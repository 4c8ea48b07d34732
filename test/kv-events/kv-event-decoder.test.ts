import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  encodeMsgpack,
  MsgpackFloat,
  MsgpackInt,
  MsgpackMap,
  type MsgpackValue,
} from "../../bench/msgpack-encoder.js";
import { blockHashHex } from "../../src/kv-events/block-hash-hex.js";
import {
  decodeKvEventBatch,
  MAX_BATCH_BLOCKS,
  MAX_BATCH_EVENTS,
} from "../../src/kv-events/kv-event-decoder.js";
import type { BlockRemovedEvent, KvEventBatch } from "../../src/kv-events/kv-event-types.js";
import { eventForm } from "../support/kv-event-form.js";
import { hashBytes, kvEventCase } from "./kv-event-arbitraries.js";

const FIXTURES = new URL("../fixtures/vllm-kv-events/", import.meta.url);
const expectedJson: Record<string, unknown> = JSON.parse(
  readFileSync(new URL("expected.json", FIXTURES), "utf8"),
);
const fixtureNames = readdirSync(FIXTURES)
  .filter((file) => file.endsWith(".msgpack"))
  .map((file) => file.slice(0, -".msgpack".length))
  .sort();

/** A decoded batch in expected.json's form: snake_case, hashes in hex, null for absent. */
function fixtureForm(batch: KvEventBatch): unknown {
  return {
    ts: batch.ts,
    data_parallel_rank: batch.dataParallelRank ?? null,
    events: batch.events.map(eventForm),
  };
}

/** Decodes a payload that must decode, failing with the decoder's message otherwise. */
function decodeOk(payload: Uint8Array): KvEventBatch {
  const result = decodeKvEventBatch(payload);
  if (result.error !== undefined) throw new Error(`expected a batch, got: ${result.error}`);
  return result.batch;
}

function decodeValue(value: MsgpackValue): KvEventBatch {
  return decodeOk(encodeMsgpack(value));
}

function errorOf(value: MsgpackValue | Uint8Array): string {
  const payload = value instanceof Uint8Array ? value : encodeMsgpack(value);
  const result = decodeKvEventBatch(payload);
  if (result.error === undefined) throw new Error("expected an error, got a batch");
  return result.error;
}

/** A legacy BlockStored with every field up to lora_name. */
function storedArray(
  hashes: MsgpackValue[],
  overrides: Partial<Record<number, MsgpackValue>> = {},
) {
  const fields: MsgpackValue[] = ["BlockStored", hashes, null, [1, 2], 16, null, "GPU", null];
  for (const [i, value] of Object.entries(overrides)) fields[Number(i)] = value as MsgpackValue;
  return fields;
}

const TS = new MsgpackFloat(1763700000.25);

describe("decodeKvEventBatch()", () => {
  describe("engine fixtures", () => {
    it("has an expectation for every fixture and a fixture for every expectation", () => {
      expect(fixtureNames).toEqual(Object.keys(expectedJson).sort());
      expect(fixtureNames.length).toBeGreaterThanOrEqual(5);
    });

    it.each(fixtureNames)("decodes %s to what expected.json says", (name) => {
      const payload = readFileSync(new URL(`${name}.msgpack`, FIXTURES));
      const batch = decodeOk(payload);
      expect(fixtureForm(batch)).toEqual(expectedJson[name]);
      expect(batch.skippedEvents).toBe(0);
    });

    it("keeps the fields expected.json does not show: group_idx and lora_id", () => {
      const payload = readFileSync(new URL("map-events.msgpack", FIXTURES));
      const [stored] = decodeOk(payload).events;
      expect(stored).toMatchObject({ groupIdx: 0, loraId: undefined, kvCacheSpecKind: undefined });
    });
  });

  describe("block hashes", () => {
    it.each([
      ["a fixint", 7, "0000000000000007"],
      ["a uint8", new MsgpackInt(7, "uint8"), "0000000000000007"],
      ["a uint16", new MsgpackInt(7, "uint16"), "0000000000000007"],
      ["a uint32", new MsgpackInt(7, "uint32"), "0000000000000007"],
      ["a uint64", new MsgpackInt(7, "uint64"), "0000000000000007"],
      ["an int64", new MsgpackInt(7, "int64"), "0000000000000007"],
      ["a uint64 past 2^53", 0xfbe90fbe99ca4623n, "fbe90fbe99ca4623"],
      ["uint64's maximum", 2n ** 64n - 1n, "ffffffffffffffff"],
      ["SGLang's negative int64", -3488128144981237669n, "cf97adeedb59e05b"],
      ["a negative fixint", -1, "ffffffffffffffff"],
      ["a negative int16", new MsgpackInt(-2, "int16"), "fffffffffffffffe"],
      ["a 32-byte digest", new Uint8Array(32).fill(0xab), "ab".repeat(32)],
      ["bytes of another length", Uint8Array.of(1, 2, 3), "010203"],
    ])("decodes %s to one 8-byte form (or its bytes)", (_case, hash, hex) => {
      const batch = decodeValue([TS, [storedArray([hash], { 2: hash })]]);
      const stored = batch.events[0];
      expect(stored?.type).toBe("BlockStored");
      if (stored?.type !== "BlockStored") return;
      expect(stored.blockHashes.map(blockHashHex)).toEqual([hex]);
      expect(stored.parentBlockHash && blockHashHex(stored.parentBlockHash)).toBe(hex);
    });

    it("decodes an SGLang hash to the leading 8 bytes of the SHA-256 digest it was cut from", () => {
      // SGLang hashes a root block's token ids as little-endian u32s and sends the digest's first
      // 8 bytes as a signed int64; the wire-format notes give the value for tokens [1, 2, 3, 4].
      const tokens = Buffer.alloc(16);
      for (const [i, token] of [1, 2, 3, 4].entries()) tokens.writeUInt32LE(token, i * 4);
      const digest = createHash("sha256").update(tokens).digest();
      expect(digest.readBigInt64BE(0)).toBe(-3488128144981237669n);

      const batch = decodeValue([TS, [["BlockRemoved", [-3488128144981237669n]]]]);
      expect(batch.events[0]).toMatchObject({
        blockHashes: [Uint8Array.from(digest.subarray(0, 8))],
      });
    });

    it("returns hashes that do not share memory with a reused receive buffer", () => {
      const payload = Buffer.from(
        encodeMsgpack([TS, [["BlockRemoved", [2n ** 63n, new Uint8Array(32).fill(9)]]]]),
      );
      const batch = decodeOk(payload);
      payload.fill(0);
      expect(batch.events[0]).toMatchObject({
        blockHashes: [hashBytes(2n ** 63n), new Uint8Array(32).fill(9)],
      });
    });
  });

  describe("layouts", () => {
    it("reads a map batch and map events in any key order", () => {
      const batch = decodeValue(
        MsgpackMap.of({
          data_parallel_rank: 3,
          events: [MsgpackMap.of({ medium: "CPU", block_hashes: [1], type: "BlockRemoved" })],
          ts: TS,
        }),
      );
      expect(batch).toEqual({
        ts: 1763700000.25,
        events: [
          {
            type: "BlockRemoved",
            blockHashes: [hashBytes(1n)],
            medium: "CPU",
            groupIdx: undefined,
          },
        ],
        dataParallelRank: 3,
        skippedEvents: 0,
      });
    });

    it("gives a legacy BlockStored without its trailing fields their defaults", () => {
      const batch = decodeValue([TS, [["BlockStored", [1, 2], null, [], 16]]]);
      expect(batch.events).toEqual([
        {
          type: "BlockStored",
          blockHashes: [hashBytes(1n), hashBytes(2n)],
          parentBlockHash: undefined,
          tokenCount: 0,
          blockSize: 16,
          loraId: undefined,
          medium: "GPU",
          loraName: undefined,
          groupIdx: undefined,
          kvCacheSpecKind: undefined,
        },
      ]);
    });

    it("reads every field a current engine appends, and ignores the ones after them", () => {
      const event = [
        ...storedArray([1], { 5: 4, 6: "CPU", 7: "sql-adapter" }),
        [["salt"], null],
        2,
        "sliding_window",
        4096,
        "LOCAL",
        MsgpackMap.of({ future: true }),
      ];
      expect(decodeValue([TS, [event]]).events[0]).toEqual({
        type: "BlockStored",
        blockHashes: [hashBytes(1n)],
        parentBlockHash: undefined,
        tokenCount: 2,
        blockSize: 16,
        loraId: 4,
        medium: "CPU",
        loraName: "sql-adapter",
        groupIdx: 2,
        kvCacheSpecKind: "sliding_window",
      });
    });

    it("reads nil for an optional field as its default, a medium of nil as GPU", () => {
      const event = MsgpackMap.of({
        type: "BlockStored",
        block_hashes: [1],
        parent_block_hash: null,
        medium: null,
        lora_name: null,
        group_idx: null,
      });
      expect(decodeValue([TS, [event]]).events[0]).toMatchObject({
        parentBlockHash: undefined,
        medium: "GPU",
        loraName: undefined,
        groupIdx: undefined,
        blockSize: 0,
        tokenCount: 0,
      });
    });

    it("skips unknown keys, whatever their type, and unknown event types, counting the events", () => {
      const batch = decodeValue([
        TS,
        [
          ["BlockMigrated", [1], "CPU", "DISK"],
          new MsgpackMap([
            ["type", "BlockRemoved"],
            [7, "an integer key"],
            ["block_hashes", [5]],
            ["session_id", MsgpackMap.of({ nested: [1, 2, 3] })],
          ]),
          MsgpackMap.of({ block_hashes: [1], type: "BlockPinned" }),
          ["AllBlocksCleared", "a future field"],
        ],
        0,
        "a future batch field",
      ]);
      expect(batch.events).toEqual([
        { type: "BlockRemoved", blockHashes: [hashBytes(5n)], medium: "GPU", groupIdx: undefined },
        { type: "AllBlocksCleared", medium: undefined },
      ]);
      expect(batch.skippedEvents).toBe(2);
    });

    it("reads the medium a map AllBlocksCleared names, and none from an array one", () => {
      const batch = decodeValue([
        TS,
        [MsgpackMap.of({ type: "AllBlocksCleared", medium: "CPU" }), ["AllBlocksCleared", "CPU"]],
      ]);
      expect(batch.events).toEqual([
        { type: "AllBlocksCleared", medium: "CPU" },
        { type: "AllBlocksCleared", medium: undefined },
      ]);
    });

    it.each([
      ["left out of an array batch", [TS, []]],
      ["nil in an array batch", [TS, [], null]],
      ["left out of a map batch", MsgpackMap.of({ ts: TS, events: [] })],
    ])("has no data-parallel rank when it is %s", (_case, value) => {
      expect(decodeValue(value).dataParallelRank).toBeUndefined();
    });

    it.each([
      ["float64", TS, 1763700000.25],
      ["float32", new MsgpackFloat(1.5, "float32"), 1.5],
      ["an integer", 1763700000, 1763700000],
    ])("reads ts written as %s", (_case, ts, seconds) => {
      expect(decodeValue([ts, []]).ts).toBe(seconds);
    });
  });

  describe("malformed payloads", () => {
    it("rejects the whole batch when one event in it is malformed", () => {
      const result = decodeKvEventBatch(
        encodeMsgpack([TS, [storedArray([1]), ["BlockRemoved", [2, "3"]], ["AllBlocksCleared"]]]),
      );
      expect(result).toEqual({
        error: "events[1].block_hashes[1]: expected an integer or bytes, got a string at byte 53",
      });
    });

    it.each<[string, MsgpackValue | Uint8Array, string]>([
      [
        "an empty payload",
        new Uint8Array(0),
        "batch: input ends where a value should start at byte 0",
      ],
      [
        "a batch that is neither array nor map",
        5,
        "batch: expected an array or a map, got an integer",
      ],
      [
        "an array batch with one field",
        [TS],
        "batch: expected [ts, events, data_parallel_rank], got 1 fields",
      ],
      ["a map batch without ts", MsgpackMap.of({ events: [] }), "ts: missing"],
      ["a map batch without events", MsgpackMap.of({ ts: TS }), "events: missing"],
      ["a ts that is a string", ["now", []], "ts: expected a number, got a string"],
      ["a ts that is NaN", [new MsgpackFloat(Number.NaN), []], "ts: expected a finite number"],
      [
        "a ts that is infinite",
        [new MsgpackFloat(Number.POSITIVE_INFINITY), []],
        "ts: expected a finite number",
      ],
      ["events that are not a list", [TS, null], "events: expected an array, got nil"],
      [
        "a negative rank",
        [TS, [], -1],
        "data_parallel_rank: expected a non-negative integer, got -1",
      ],
      ["an event that is nil", [TS, [null]], "events[0]: expected an array or a map, got nil"],
      [
        "an empty array event",
        [TS, [[]]],
        "events[0].type: expected a tagged event, got an empty array",
      ],
      [
        "a tag that is not a string",
        [TS, [[1, [1]]]],
        "events[0].type: expected a string, got an integer",
      ],
      [
        "a map event without type",
        [TS, [MsgpackMap.of({ block_hashes: [1] })]],
        "events[0].type: missing",
      ],
      [
        "a BlockStored without hashes",
        [TS, [MsgpackMap.of({ type: "BlockStored", block_size: 16 })]],
        "events[0].block_hashes: missing",
      ],
      [
        "a BlockRemoved with nil hashes",
        [TS, [["BlockRemoved", null]]],
        "events[0].block_hashes: expected an array, got nil",
      ],
      [
        "a hash that is a float",
        [TS, [["BlockRemoved", [1, 2, 1.5]]]],
        "events[0].block_hashes[2]: expected an integer or bytes, got a float",
      ],
      [
        "a parent that is a string",
        [TS, [storedArray([1], { 2: "abc" })]],
        "events[0].parent_block_hash: expected an integer or bytes, got a string",
      ],
      [
        "a token id that is a string",
        [TS, [storedArray([1], { 3: [1, 2, 3, "4"] })]],
        "events[0].token_ids[3]: expected an integer, got a string",
      ],
      [
        "a negative block size",
        [TS, [storedArray([1], { 4: -16 })]],
        "events[0].block_size: expected a non-negative integer, got -16",
      ],
      [
        "a lora_id past 2^53",
        [TS, [storedArray([1], { 5: 2n ** 60n })]],
        "events[0].lora_id: integer does not fit a JS number exactly",
      ],
      [
        "a medium that is an integer",
        [TS, [storedArray([1], { 6: 1 })]],
        "events[0].medium: expected a string, got an integer",
      ],
      [
        "a lora_name that is bytes",
        [TS, [storedArray([1], { 7: Uint8Array.of(1) })]],
        "events[0].lora_name: expected a string, got bytes",
      ],
      [
        "a negative group_idx",
        [TS, [MsgpackMap.of({ type: "BlockRemoved", block_hashes: [], group_idx: -2 })]],
        "events[0].group_idx: expected a non-negative integer, got -2",
      ],
      [
        "bytes after the batch",
        Uint8Array.of(...encodeMsgpack([TS, []]), 0xc0),
        "batch: 1 bytes follow the batch at byte 11",
      ],
    ])("rejects %s", (_case, value, message) => {
      expect(errorOf(value)).toContain(message);
    });

    it("rejects a 4-GB length prefix in a small payload without allocating it", () => {
      // [ts, events] whose events array declares 2^32 - 1 elements and holds none.
      const events = Uint8Array.of(0x92, ...encodeMsgpack(TS), 0xdd, 0xff, 0xff, 0xff, 0xff);
      expect(errorOf(events)).toBe(
        "events: declares 4294967295 elements but only 0 bytes are left at byte 10",
      );
      // [ts, [["BlockRemoved", [<bin32 of 4 GB - 16 bytes holding 2>]]]]
      const hash = Uint8Array.of(
        ...[0x92, ...encodeMsgpack(TS), 0x91, 0x92, ...encodeMsgpack("BlockRemoved"), 0x91],
        ...[0xc6, 0xff, 0xff, 0xff, 0xf0, 1, 2],
      );
      expect(errorOf(hash)).toMatch(/^events\[0\]\.block_hashes\[0\]: declares 4294967280 bytes/);
    });

    /** [ts, events] with the events given as raw msgpack, after an array header of `count`. */
    function batchOfRawEvents(count: number, ...events: Uint8Array[]): Uint8Array {
      const header = Uint8Array.of(0xdd, count >>> 24, count >>> 16, count >>> 8, count);
      return Buffer.concat([Uint8Array.of(0x92), encodeMsgpack(TS), header, ...events]);
    }

    /** One array-layout BlockRemoved event of `count` 1-byte hashes (fixint 1), as raw msgpack. */
    function removedOfFixints(count: number): Uint8Array {
      const head = [0x92, ...encodeMsgpack("BlockRemoved")];
      const header = [0xdd, count >>> 24, count >>> 16, count >>> 8, count];
      const bytes = new Uint8Array(head.length + header.length + count).fill(1);
      bytes.set([...head, ...header]);
      return bytes;
    }

    it(`rejects a batch carrying more than ${MAX_BATCH_BLOCKS} block hashes, events together`, () => {
      // Each 1-byte hash would be an 8-byte array of its own: bytes on the wire cost 200 times as
      // much heap, so the cap, not the payload's size, bounds what a batch can allocate.
      const half = MAX_BATCH_BLOCKS / 2;
      const two = (second: number) =>
        batchOfRawEvents(2, removedOfFixints(half), removedOfFixints(second));
      expect(
        decodeOk(two(half)).events.map((e) => (e as BlockRemovedEvent).blockHashes.length),
      ).toEqual([half, half]);
      expect(errorOf(two(half + 1))).toMatch(
        new RegExp(
          `^events\\[1\\]\\.block_hashes: ${half + 1} hashes would make the batch's ${MAX_BATCH_BLOCKS + 1}, more than the ${MAX_BATCH_BLOCKS} a batch may carry at byte \\d+$`,
        ),
      );
    });

    it(`rejects a batch of more than ${MAX_BATCH_EVENTS} events, known or not`, () => {
      const cleared = encodeMsgpack(["AllBlocksCleared"]);
      const events = (count: number) => {
        const bytes = new Uint8Array(count * cleared.length);
        for (let i = 0; i < count; i++) bytes.set(cleared, i * cleared.length);
        return batchOfRawEvents(count, bytes);
      };
      expect(decodeOk(events(MAX_BATCH_EVENTS)).events).toHaveLength(MAX_BATCH_EVENTS);
      expect(errorOf(events(MAX_BATCH_EVENTS + 1))).toBe(
        `events: ${MAX_BATCH_EVENTS + 1} events, more than the ${MAX_BATCH_EVENTS} a batch may carry at byte 10`,
      );
    });
  });

  describe("properties", () => {
    it("decodes any batch an engine could send to the values it was built from", () => {
      fc.assert(
        fc.property(kvEventCase, ({ payload, expected }) => {
          expect(decodeKvEventBatch(payload)).toEqual({ batch: expected });
        }),
        { numRuns: 400 },
      );
    });

    it("rejects every strict prefix of a valid payload", () => {
      fc.assert(
        fc.property(kvEventCase, fc.nat(), ({ payload }, cut) => {
          const prefix = payload.subarray(0, cut % payload.length);
          expect(decodeKvEventBatch(prefix).error).toEqual(expect.any(String));
        }),
        { numRuns: 300 },
      );
    });

    it("never throws on arbitrary bytes", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300, size: "max" }), (payload) => {
          expectBatchOrError(decodeKvEventBatch(payload));
        }),
        { numRuns: 2000 },
      );
    });

    it("never throws on a valid payload with bytes overwritten, inserted or removed", () => {
      const edit = fc.record({
        kind: fc.constantFrom("overwrite", "insert", "remove"),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      });
      fc.assert(
        fc.property(
          kvEventCase,
          fc.array(edit, { minLength: 1, maxLength: 4 }),
          ({ payload }, edits) => {
            const bytes = [...payload];
            for (const { kind, at, byte } of edits) {
              const i = at % (bytes.length + 1);
              if (kind === "insert") bytes.splice(i, 0, byte);
              else if (kind === "remove") bytes.splice(i, 1);
              else if (i < bytes.length) bytes[i] = byte;
            }
            expectBatchOrError(decodeKvEventBatch(Uint8Array.from(bytes)));
          },
        ),
        { numRuns: 1000 },
      );
    });
  });
});

function expectBatchOrError(result: ReturnType<typeof decodeKvEventBatch>): void {
  if (result.error === undefined) expect(result.batch.events).toBeInstanceOf(Array);
  else expect(result.error).toMatch(/^[a-z_\][0-9.]+: .+ at byte \d+$/);
}
