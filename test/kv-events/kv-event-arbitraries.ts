import fc from "fast-check";
import {
  encodeMsgpack,
  MsgpackFloat,
  MsgpackMap,
  type MsgpackValue,
} from "../../bench/msgpack-encoder.js";
import type { BlockHash, KvEvent, KvEventBatch } from "../../src/kv-events/kv-event-types.js";
import { anyLengthWidth, anyMsgpackValue, inAnyFormat } from "./msgpack-arbitraries.js";

/** A payload an engine could send, with the batch it must decode to. */
export interface KvEventCase {
  readonly payload: Uint8Array;
  readonly expected: KvEventBatch;
}

/** One event on the wire, with what it must decode to (undefined: an unknown type, skipped). */
interface EventCase {
  readonly wire: MsgpackValue;
  readonly expected: KvEvent | undefined;
}

/** A field of an event or batch: its wire name and value, and whether leaving it out is the same. */
interface Field {
  readonly name: string;
  readonly wire: MsgpackValue;
  readonly isDefault: boolean;
}

/** Every name the decoder gives a meaning to; unknown keys are drawn from outside this set. */
const KNOWN_NAMES = new Set([
  "type",
  "ts",
  "events",
  "data_parallel_rank",
  "block_hashes",
  "parent_block_hash",
  "token_ids",
  "block_size",
  "lora_id",
  "medium",
  "lora_name",
  "extra_keys",
  "group_idx",
  "kv_cache_spec_kind",
]);
const KNOWN_TAGS = new Set(["BlockStored", "BlockRemoved", "AllBlocksCleared"]);

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MIN = -(2n ** 63n);

/** 8 bytes big-endian: the 64-bit two's complement of `value`. */
export function hashBytes(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, value));
  return bytes;
}

interface HashCase {
  readonly wire: MsgpackValue;
  readonly bytes: BlockHash;
}

/**
 * A block hash as engines send one: vLLM's unsigned 64-bit integers (past 2^53 too), SGLang's
 * negative int64s, small values an encoder writes as a fixint or a narrow int, each in any integer
 * width that holds it, or bytes (32-byte digests, and other lengths).
 */
const hashCase: fc.Arbitrary<HashCase> = fc.oneof(
  fc
    .tuple(fc.bigInt({ min: -40n, max: 70_000n }), fc.nat())
    .map(([value, pick]) => ({ wire: inAnyFormat(value, pick), bytes: hashBytes(value) })),
  fc
    .tuple(fc.bigInt({ min: 0n, max: UINT64_MAX }), fc.nat())
    .map(([value, pick]) => ({ wire: inAnyFormat(value, pick), bytes: hashBytes(value) })),
  fc
    .tuple(fc.bigInt({ min: INT64_MIN, max: -1n }), fc.nat())
    .map(([value, pick]) => ({ wire: inAnyFormat(value, pick), bytes: hashBytes(value) })),
  fc
    .oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 64 }))
    .map((bytes) => ({ wire: bytes, bytes })),
);

const text = fc.oneof(fc.constantFrom("GPU", "CPU", "DISK"), fc.string({ unit: "binary" }));

const unknownKey: fc.Arbitrary<MsgpackValue> = fc.oneof(
  fc.string({ maxLength: 20 }).filter((key) => !KNOWN_NAMES.has(key)),
  fc.integer(),
  fc.constant(null),
);

/** How a record is laid out on the wire; everything a field list can be written as. */
interface LayoutChoices {
  readonly keyed: boolean;
  /** Per field: whether a map writes it even with its default value. */
  readonly keepDefaults: readonly boolean[];
  /** Picks how many trailing default fields an array leaves out. */
  readonly cut: number;
  /** Sort keys for a map's entries: maps come in any key order. */
  readonly order: readonly number[];
  /** Entries a map adds under keys the decoder does not know. */
  readonly extraEntries: readonly (readonly [MsgpackValue, MsgpackValue])[];
  /** Values an array adds after every field it knows (a newer engine's fields). */
  readonly extraValues: readonly MsgpackValue[];
}

const layoutChoices: fc.Arbitrary<LayoutChoices> = fc.record({
  keyed: fc.boolean(),
  keepDefaults: fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
  cut: fc.nat(),
  order: fc.array(fc.nat(), { minLength: 24, maxLength: 24 }),
  extraEntries: fc.array(fc.tuple(unknownKey, anyMsgpackValue), { maxLength: 2 }),
  extraValues: fc.array(anyMsgpackValue, { maxLength: 2 }),
});

/**
 * Writes fields as an array (`head`, then the first `positional` fields, trailing defaults possibly
 * left out, unknown values after a full set) or as a map (`tag` under `tagKey`, defaults possibly
 * left out, unknown keys added, shuffled).
 */
function layOut(
  head: readonly MsgpackValue[],
  tagEntry: readonly [string, MsgpackValue] | undefined,
  fields: readonly Field[],
  positional: number,
  choices: LayoutChoices,
): MsgpackValue {
  if (!choices.keyed) {
    const known = fields.slice(0, positional);
    let needed = 0;
    known.forEach((field, i) => {
      if (!field.isDefault) needed = i + 1;
    });
    const length = needed + (choices.cut % (known.length - needed + 1));
    const values = [...head, ...known.slice(0, length).map((field) => field.wire)];
    if (length === known.length) values.push(...choices.extraValues);
    return values;
  }
  const entries: (readonly [MsgpackValue, MsgpackValue])[] = [];
  if (tagEntry !== undefined) entries.push(tagEntry);
  fields.forEach((field, i) => {
    if (!field.isDefault || choices.keepDefaults[i % choices.keepDefaults.length]) {
      entries.push([field.name, field.wire]);
    }
  });
  entries.push(...choices.extraEntries);
  const rank = (i: number) => choices.order[i % choices.order.length] as number;
  const shuffled = entries.map((entry, i) => ({ entry, key: rank(i) }));
  shuffled.sort((a, b) => a.key - b.key);
  return new MsgpackMap(shuffled.map(({ entry }) => entry));
}

function optional(name: string, value: MsgpackValue | undefined): Field {
  return { name, wire: value ?? null, isDefault: value === undefined };
}

function hashList(hashes: readonly HashCase[]): Field {
  return { name: "block_hashes", wire: hashes.map((h) => h.wire), isDefault: false };
}

const blockStored: fc.Arbitrary<EventCase> = fc
  .record({
    hashes: fc.array(hashCase, { maxLength: 12 }),
    parent: fc.option(hashCase, { nil: undefined }),
    tokenIds: fc.array(fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), fc.nat()), { maxLength: 40 }),
    blockSize: fc.oneof(fc.constant(16), fc.nat({ max: 1024 })),
    loraId: fc.option(fc.integer(), { nil: undefined }),
    medium: fc.option(text, { nil: undefined }),
    loraName: fc.option(text, { nil: undefined }),
    extraKeys: fc.option(anyMsgpackValue, { nil: undefined }),
    groupIdx: fc.option(fc.nat(), { nil: undefined }),
    kind: fc.option(text, { nil: undefined }),
    layout: layoutChoices,
  })
  .map((spec) => {
    const fields: Field[] = [
      hashList(spec.hashes),
      optional("parent_block_hash", spec.parent?.wire),
      {
        name: "token_ids",
        wire: spec.tokenIds.map(([id, pick]) => inAnyFormat(BigInt(id), pick)),
        isDefault: spec.tokenIds.length === 0,
      },
      { name: "block_size", wire: spec.blockSize, isDefault: spec.blockSize === 0 },
      optional("lora_id", spec.loraId),
      optional("medium", spec.medium),
      optional("lora_name", spec.loraName),
      optional("extra_keys", spec.extraKeys),
      optional("group_idx", spec.groupIdx),
      optional("kv_cache_spec_kind", spec.kind),
    ];
    const tag = ["type", "BlockStored"] as const;
    return {
      wire: layOut(["BlockStored"], tag, fields, fields.length, spec.layout),
      expected: {
        type: "BlockStored",
        blockHashes: spec.hashes.map((h) => h.bytes),
        parentBlockHash: spec.parent?.bytes,
        tokenCount: spec.tokenIds.length,
        blockSize: spec.blockSize,
        loraId: spec.loraId,
        medium: spec.medium ?? "GPU",
        loraName: spec.loraName,
        groupIdx: spec.groupIdx,
        kvCacheSpecKind: spec.kind,
      },
    };
  });

const blockRemoved: fc.Arbitrary<EventCase> = fc
  .record({
    hashes: fc.array(hashCase, { maxLength: 12 }),
    medium: fc.option(text, { nil: undefined }),
    groupIdx: fc.option(fc.nat(), { nil: undefined }),
    layout: layoutChoices,
  })
  .map((spec) => {
    const fields = [
      hashList(spec.hashes),
      optional("medium", spec.medium),
      optional("group_idx", spec.groupIdx),
    ];
    return {
      wire: layOut(["BlockRemoved"], ["type", "BlockRemoved"], fields, fields.length, spec.layout),
      expected: {
        type: "BlockRemoved",
        blockHashes: spec.hashes.map((h) => h.bytes),
        medium: spec.medium ?? "GPU",
        groupIdx: spec.groupIdx,
      },
    };
  });

/** No positional fields; a map may name the medium cleared. */
const allBlocksCleared: fc.Arbitrary<EventCase> = fc
  .record({ medium: fc.option(text, { nil: undefined }), layout: layoutChoices })
  .map((spec) => ({
    wire: layOut(
      ["AllBlocksCleared"],
      ["type", "AllBlocksCleared"],
      [optional("medium", spec.medium)],
      0,
      spec.layout,
    ),
    expected: {
      type: "AllBlocksCleared",
      medium: spec.layout.keyed ? spec.medium : undefined,
    },
  }));

/** An event type from a newer engine, with fields of any shape. */
const unknownEvent: fc.Arbitrary<EventCase> = fc
  .record({
    tag: fc.string({ unit: "binary", maxLength: 20 }).filter((tag) => !KNOWN_TAGS.has(tag)),
    values: fc.array(anyMsgpackValue, { maxLength: 4 }),
    layout: layoutChoices,
  })
  .map((spec) => ({
    wire: layOut(
      [spec.tag],
      ["type", spec.tag],
      spec.values.map((value, i) => ({ name: `field_${i}`, wire: value, isDefault: false })),
      spec.values.length,
      spec.layout,
    ),
    expected: undefined,
  }));

const tsCase: fc.Arbitrary<{ readonly wire: MsgpackValue; readonly value: number }> = fc.oneof(
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((value) => ({ wire: new MsgpackFloat(value), value })),
  fc
    .float({ noNaN: true, noDefaultInfinity: true })
    .map((value) => ({ wire: new MsgpackFloat(value, "float32"), value })),
  fc.integer({ min: 0, max: 2 ** 40 }).map((value) => ({ wire: value, value })),
);

/**
 * A batch in either layout, with events of every type in either layout, in any encoding widths,
 * with unknown fields, keys, trailing values and event types mixed in, and what it decodes to.
 */
export const kvEventCase: fc.Arbitrary<KvEventCase> = fc
  .record({
    ts: tsCase,
    events: fc.array(fc.oneof(blockStored, blockRemoved, allBlocksCleared, unknownEvent), {
      maxLength: 8,
    }),
    rank: fc.option(fc.nat({ max: 1024 }), { nil: undefined }),
    layout: layoutChoices,
    lengthWidth: anyLengthWidth,
  })
  .map((spec) => {
    const fields: Field[] = [
      { name: "ts", wire: spec.ts.wire, isDefault: false },
      { name: "events", wire: spec.events.map((e) => e.wire), isDefault: false },
      optional("data_parallel_rank", spec.rank),
    ];
    const wire = layOut([], undefined, fields, fields.length, spec.layout);
    const events = spec.events.flatMap((e) => (e.expected === undefined ? [] : [e.expected]));
    return {
      payload: encodeMsgpack(wire, { lengthWidth: spec.lengthWidth }),
      expected: {
        ts: spec.ts.value,
        events,
        dataParallelRank: spec.rank,
        skippedEvents: spec.events.length - events.length,
      },
    };
  });
