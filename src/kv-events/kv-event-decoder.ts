import {
  type AllBlocksClearedEvent,
  type BlockHash,
  type BlockRemovedEvent,
  type BlockStoredEvent,
  DEFAULT_KV_MEDIUM,
  type KvEvent,
  type KvEventBatch,
} from "./kv-event-types.js";
import { MsgpackDecodeError } from "./msgpack-decode-error.js";
import { MsgpackReader } from "./msgpack-reader.js";

/** What {@link decodeKvEventBatch} gives: the batch, or why there is none. */
export type KvEventBatchResult =
  | { readonly batch: KvEventBatch; readonly error?: undefined }
  | { readonly error: string; readonly batch?: undefined };

/**
 * The most block hashes one batch may carry, its events' `block_hashes` together. Each hash is an
 * array of its own (a 1-byte integer on the wire costs some 200 bytes of heap), so this, not the
 * payload's size, bounds what decoding a batch allocates: about 60 MB at the cap. An engine step
 * stores or evicts a few hundred blocks (its token budget over the block size); a cleared cache is
 * one AllBlocksCleared event.
 */
export const MAX_BATCH_BLOCKS = 262_144;

/** The most events one batch may carry, of known types or not (each known one is an object). */
export const MAX_BATCH_EVENTS = 65_536;

/**
 * Decodes the payload frame (the third) of a vLLM or SGLang KV-event message. Pure: no I/O, and it
 * never throws for any input; a payload it cannot decode gives `{ error }`, a message naming where
 * (`events[2].block_hashes[1]: expected an integer or bytes, got a string at byte 57`).
 *
 * Accepts both layouts the engines publish, at both levels: the batch as `[ts, events, rank?]` or
 * as a map `{ts, events, data_parallel_rank}`; each event as a tagged array
 * `["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium,
 * lora_name, extra_keys, group_idx, kv_cache_spec_kind, ...]` or as a map keyed by `"type"`, in any
 * key order. Fields an engine left out (trailing array fields, omitted map keys), and optional ones
 * (typed `| None` by the engines) sent as nil, take their defaults (see {@link BlockStoredEvent});
 * only `block_hashes` is required. Fields and keys this decoder does not know are skipped, and so
 * are events of unknown types, which are counted in `skippedEvents`. Hashes are decoded as
 * {@link BlockHash} describes.
 *
 * A malformed event (a known type with a field of the wrong type, a negative size, no
 * `block_hashes`; a tag that is not a string, a map without `type`) rejects the whole batch: a
 * batch is one engine step's changes in order, and applying the events around a hole would leave
 * the index in a state the engine never was in. So do a batch without `ts` or `events`, a `ts` that
 * is not a finite number, bytes after the batch, and a batch over {@link MAX_BATCH_EVENTS} events
 * or {@link MAX_BATCH_BLOCKS} block hashes (found from the lists' lengths, before their elements
 * are read).
 *
 * Cost: O(payload bytes); allocates the output (one object per event, one array per hash) and
 * nothing per token or per skipped value.
 */
export function decodeKvEventBatch(payload: Uint8Array): KvEventBatchResult {
  const reader = new MsgpackReader(payload);
  const at: DecodeLocation = { event: -1, field: "", element: -1, hashes: 0 };
  try {
    const batch = readBatch(reader, at);
    if (reader.remaining > 0) {
      throw schemaError(`${reader.remaining} bytes follow the batch`, reader.offset);
    }
    return { batch };
  } catch (error) {
    if (error instanceof MsgpackDecodeError || error instanceof KvEventSchemaError) {
      return { error: `${locationText(at)}: ${error.message}` };
    }
    throw error;
  }
}

/** Well-formed msgpack that is not a well-formed batch: a field missing or out of its range. */
class KvEventSchemaError extends Error {
  override readonly name = "KvEventSchemaError";
}

function schemaError(message: string, offset: number): KvEventSchemaError {
  return new KvEventSchemaError(`${message} at byte ${offset}`);
}

/**
 * Where decoding is, for error messages only. Updated with constant strings and indexes as the
 * decoder goes, so that knowing it costs nothing until a message is built.
 */
interface DecodeLocation {
  /** Index in `events`; -1 outside them. */
  event: number;
  /** The wire name of the field being read; "" between fields. */
  field: string;
  /** Index in the field's list; -1 outside one. */
  element: number;
  /** Block hashes read so far in the batch (not a location: the count MAX_BATCH_BLOCKS caps). */
  hashes: number;
}

function locationText(at: DecodeLocation): string {
  let text = at.event >= 0 ? `events[${at.event}]` : "";
  if (at.field !== "") text += text === "" ? at.field : `.${at.field}`;
  if (at.element >= 0) text += `[${at.element}]`;
  return text === "" ? "batch" : text;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

function ascii(name: string): Uint8Array {
  const bytes = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) bytes[i] = name.charCodeAt(i);
  return bytes;
}

// Wire names, encoded once so keys and tags are matched by their bytes. Each list is in the
// array layout's order: a field's index is its position after the tag.
const EVENT_TAGS = ["BlockStored", "BlockRemoved", "AllBlocksCleared"].map(ascii);
const BLOCK_STORED = 0;
const BLOCK_REMOVED = 1;
const ALL_BLOCKS_CLEARED = 2;
const BATCH_KEYS = ["ts", "events", "data_parallel_rank"].map(ascii);
const TYPE_KEY = ["type"].map(ascii);
const STORED_KEYS = [
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
].map(ascii);
const REMOVED_KEYS = ["block_hashes", "medium", "group_idx"].map(ascii);
/** Map layout only: no engine sends a positional field for this event. */
const CLEARED_KEYS = ["medium"].map(ascii);

/** Placeholders for required fields, replaced before an object is returned. */
const NO_EVENTS: readonly KvEvent[] = [];
const NO_HASHES: readonly BlockHash[] = [];

function readBatch(reader: MsgpackReader, at: DecodeLocation): KvEventBatch {
  const batch: Writable<KvEventBatch> = {
    ts: Number.NaN,
    events: NO_EVENTS,
    dataParallelRank: undefined,
    skippedEvents: 0,
  };
  const start = reader.offset;
  const format = reader.peekFormat();
  if (format === "array") {
    const length = reader.readArrayLength();
    if (length < 2) {
      throw schemaError(`expected [ts, events, data_parallel_rank], got ${length} fields`, start);
    }
    for (let i = 0; i < length; i++) readBatchField(reader, at, batch, i);
  } else if (format === "map") {
    const length = reader.readMapLength();
    let seen = 0;
    for (let i = 0; i < length; i++) {
      const field = readKey(reader, at, BATCH_KEYS);
      if (field >= 0) seen |= 1 << field;
      readBatchField(reader, at, batch, field);
    }
    at.field = (seen & 1) === 0 ? "ts" : (seen & 2) === 0 ? "events" : "";
    if (at.field !== "") throw schemaError("missing", start);
  } else {
    reader.fail("an array or a map");
  }
  at.field = "";
  return batch;
}

/** Reads the batch field at `field` (an index in BATCH_KEYS), or skips an unknown one (-1 or past). */
function readBatchField(
  reader: MsgpackReader,
  at: DecodeLocation,
  batch: Writable<KvEventBatch>,
  field: number,
): void {
  switch (field) {
    case 0: {
      at.field = "ts";
      const start = reader.offset;
      batch.ts = reader.readNumber();
      if (!Number.isFinite(batch.ts)) throw schemaError("expected a finite number", start);
      return;
    }
    case 1:
      at.field = "events";
      readEvents(reader, at, batch);
      return;
    case 2:
      at.field = "data_parallel_rank";
      batch.dataParallelRank = reader.tryReadNil() ? undefined : readNonNegative(reader);
      return;
    default:
      at.field = "";
      reader.skip();
  }
}

function readEvents(
  reader: MsgpackReader,
  at: DecodeLocation,
  batch: Writable<KvEventBatch>,
): void {
  const start = reader.offset;
  const length = reader.readArrayLength();
  if (length > MAX_BATCH_EVENTS) {
    throw schemaError(
      `${length} events, more than the ${MAX_BATCH_EVENTS} a batch may carry`,
      start,
    );
  }
  const events: KvEvent[] = [];
  let skipped = 0;
  for (let i = 0; i < length; i++) {
    at.event = i;
    at.field = "";
    const event = readEvent(reader, at);
    if (event === undefined) skipped += 1;
    else events.push(event);
  }
  at.event = -1;
  batch.events = events;
  batch.skippedEvents = skipped;
}

/** Reads one event in either layout; undefined for an event of an unknown type (skipped whole). */
function readEvent(reader: MsgpackReader, at: DecodeLocation): KvEvent | undefined {
  const start = reader.offset;
  const format = reader.peekFormat();
  if (format === "array") {
    const length = reader.readArrayLength();
    at.field = "type";
    if (length === 0) throw schemaError("expected a tagged event, got an empty array", start);
    const type = reader.readStringMatch(EVENT_TAGS);
    return readEventFields(reader, at, type, length - 1, false);
  }
  if (format === "map") {
    const length = reader.readMapLength();
    const fieldsStart = reader.offset;
    const type = readTypeEntry(reader, at, length, start);
    // msgspec writes "type" first, so the scan is usually one key long; then read from the top.
    reader.rewind(fieldsStart);
    return readEventFields(reader, at, type, length, true);
  }
  return reader.fail("an array or a map");
}

/** Finds the `type` entry among a map event's `length` entries: its index in EVENT_TAGS, or -1. */
function readTypeEntry(
  reader: MsgpackReader,
  at: DecodeLocation,
  length: number,
  eventStart: number,
): number {
  for (let i = 0; i < length; i++) {
    if (readKey(reader, at, TYPE_KEY) === 0) {
      at.field = "type";
      return reader.readStringMatch(EVENT_TAGS);
    }
    reader.skip();
  }
  at.field = "type";
  throw schemaError("missing", eventStart);
}

/**
 * Reads the `count` fields of an event of type `type` (an index in EVENT_TAGS, -1 when unknown):
 * positional when not `keyed`, map entries when `keyed`.
 */
function readEventFields(
  reader: MsgpackReader,
  at: DecodeLocation,
  type: number,
  count: number,
  keyed: boolean,
): KvEvent | undefined {
  switch (type) {
    case BLOCK_STORED:
      return readBlockStored(reader, at, count, keyed);
    case BLOCK_REMOVED:
      return readBlockRemoved(reader, at, count, keyed);
    case ALL_BLOCKS_CLEARED:
      return readAllBlocksCleared(reader, at, count, keyed);
    default: {
      at.field = "";
      const values = keyed ? count * 2 : count;
      for (let i = 0; i < values; i++) reader.skip();
      return undefined;
    }
  }
}

function readBlockStored(
  reader: MsgpackReader,
  at: DecodeLocation,
  count: number,
  keyed: boolean,
): BlockStoredEvent {
  const start = reader.offset;
  const event: Writable<BlockStoredEvent> = {
    type: "BlockStored",
    blockHashes: NO_HASHES,
    parentBlockHash: undefined,
    tokenCount: 0,
    blockSize: 0,
    loraId: undefined,
    medium: DEFAULT_KV_MEDIUM,
    loraName: undefined,
    groupIdx: undefined,
    kvCacheSpecKind: undefined,
  };
  let hasHashes = false;
  for (let i = 0; i < count; i++) {
    const field = keyed ? readKey(reader, at, STORED_KEYS) : i;
    switch (field) {
      case 0:
        at.field = "block_hashes";
        event.blockHashes = readBlockHashes(reader, at);
        hasHashes = true;
        break;
      case 1:
        at.field = "parent_block_hash";
        event.parentBlockHash = reader.tryReadNil() ? undefined : readBlockHash(reader);
        break;
      case 2:
        at.field = "token_ids";
        event.tokenCount = readTokenCount(reader, at);
        break;
      case 3:
        at.field = "block_size";
        event.blockSize = readNonNegative(reader);
        break;
      case 4:
        at.field = "lora_id";
        event.loraId = reader.tryReadNil() ? undefined : reader.readInteger();
        break;
      case 5:
        at.field = "medium";
        event.medium = reader.tryReadNil() ? DEFAULT_KV_MEDIUM : reader.readString();
        break;
      case 6:
        at.field = "lora_name";
        event.loraName = reader.tryReadNil() ? undefined : reader.readString();
        break;
      case 8:
        at.field = "group_idx";
        event.groupIdx = reader.tryReadNil() ? undefined : readNonNegative(reader);
        break;
      case 9:
        at.field = "kv_cache_spec_kind";
        event.kvCacheSpecKind = reader.tryReadNil() ? undefined : reader.readString();
        break;
      default:
        // extra_keys (7): already part of the hashes, which are all the index compares.
        at.field = field === 7 ? "extra_keys" : "";
        reader.skip();
    }
  }
  requireHashes(at, hasHashes, start);
  return event;
}

function readBlockRemoved(
  reader: MsgpackReader,
  at: DecodeLocation,
  count: number,
  keyed: boolean,
): BlockRemovedEvent {
  const start = reader.offset;
  const event: Writable<BlockRemovedEvent> = {
    type: "BlockRemoved",
    blockHashes: NO_HASHES,
    medium: DEFAULT_KV_MEDIUM,
    groupIdx: undefined,
  };
  let hasHashes = false;
  for (let i = 0; i < count; i++) {
    const field = keyed ? readKey(reader, at, REMOVED_KEYS) : i;
    switch (field) {
      case 0:
        at.field = "block_hashes";
        event.blockHashes = readBlockHashes(reader, at);
        hasHashes = true;
        break;
      case 1:
        at.field = "medium";
        event.medium = reader.tryReadNil() ? DEFAULT_KV_MEDIUM : reader.readString();
        break;
      case 2:
        at.field = "group_idx";
        event.groupIdx = reader.tryReadNil() ? undefined : readNonNegative(reader);
        break;
      default:
        at.field = "";
        reader.skip();
    }
  }
  requireHashes(at, hasHashes, start);
  return event;
}

function readAllBlocksCleared(
  reader: MsgpackReader,
  at: DecodeLocation,
  count: number,
  keyed: boolean,
): AllBlocksClearedEvent {
  const event: Writable<AllBlocksClearedEvent> = { type: "AllBlocksCleared", medium: undefined };
  for (let i = 0; i < count; i++) {
    const field = keyed ? readKey(reader, at, CLEARED_KEYS) : -1;
    if (field === 0) {
      at.field = "medium";
      event.medium = reader.tryReadNil() ? undefined : reader.readString();
    } else {
      at.field = "";
      reader.skip();
    }
  }
  return event;
}

function requireHashes(at: DecodeLocation, hasHashes: boolean, eventStart: number): void {
  at.field = "block_hashes";
  if (!hasHashes) throw schemaError("missing", eventStart);
  at.field = "";
}

/**
 * Reads a map key: its index in `keys` when it is one of them, -1 for any other key (a string not
 * listed, or a key of another type, which is skipped).
 */
function readKey(reader: MsgpackReader, at: DecodeLocation, keys: readonly Uint8Array[]): number {
  at.field = "";
  if (reader.peekFormat() === "str") return reader.readStringMatch(keys);
  reader.skip();
  return -1;
}

function readBlockHashes(reader: MsgpackReader, at: DecodeLocation): BlockHash[] {
  const start = reader.offset;
  const length = reader.readArrayLength();
  at.hashes += length;
  if (at.hashes > MAX_BATCH_BLOCKS) {
    throw schemaError(
      `${length} hashes would make the batch's ${at.hashes}, more than the ${MAX_BATCH_BLOCKS} a batch may carry`,
      start,
    );
  }
  const hashes: BlockHash[] = [];
  for (let i = 0; i < length; i++) {
    at.element = i;
    hashes.push(readBlockHash(reader));
  }
  at.element = -1;
  return hashes;
}

function readBlockHash(reader: MsgpackReader): BlockHash {
  const format = reader.peekFormat();
  if (format === "int") return reader.readInteger64Bytes();
  if (format === "bin") return reader.readBinary();
  return reader.fail("an integer or bytes");
}

/** Checks `token_ids` is a list of integers and returns its length; the ids are not kept. */
function readTokenCount(reader: MsgpackReader, at: DecodeLocation): number {
  const length = reader.readArrayLength();
  for (let i = 0; i < length; i++) {
    at.element = i;
    reader.readInteger();
  }
  at.element = -1;
  return length;
}

function readNonNegative(reader: MsgpackReader): number {
  const start = reader.offset;
  const value = reader.readInteger();
  if (value < 0) throw schemaError(`expected a non-negative integer, got ${value}`, start);
  return value;
}
