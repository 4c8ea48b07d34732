import {
  CacheIndexService,
  type LookupRouteRequest,
  type LookupRouteRequestSchema,
  type LookupRouteResponse,
  type LookupRouteResponseSchema,
  type ReplicaHint,
  type ReplicaStats,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import type { DecodeResult, GrpcMethodCodec } from "./grpc-method-codec.js";
import { ProtoReader, WireFormatError, WireType } from "./proto-reader.js";
import {
  checkInt32,
  checkUint32,
  putDouble,
  putInt32,
  putString,
  putUint32,
  utf8Length,
  varintSize,
} from "./proto-writer.js";

/**
 * A hand-written codec for LookupRoute, the call every gateway request makes. On a trace request
 * (a 24-block chain, 4 hints) protobuf-es's reflection-based `fromBinary` and `toBinary` cost about
 * 5 µs and 25 µs; this costs about 0.5 µs and 0.65 µs (on the benchmark machine, in a loop; about
 * twice that in a loaded server, whose caches are cold), and lets the decode reuse what it builds
 * (see `decodeLookupRouteRequest`).
 *
 * It reads and writes what protobuf-es does (proven by property tests against it):
 * - decoding: proto3 defaults for absent fields, the last value of a repeated singular field,
 *   unknown fields skipped (not kept in `$unknown`), prefix hashes as views of the input (or, when
 *   reused, copies of 8-byte ones), strict UTF-8. A known field with the wrong wire type is
 *   rejected, where protobuf-es would misread it.
 * - encoding: the same bytes as `toBinary`, fields in number order, implicit-presence zeros
 *   omitted (but `-0` written), and protobuf-es's error for a value outside a field's range.
 *   `$unknown` fields are not written: the service never sets them.
 */
export const lookupRouteCodec: GrpcMethodCodec<
  typeof LookupRouteRequestSchema,
  typeof LookupRouteResponseSchema
> = {
  method: CacheIndexService.method.lookupRoute,
  // The server decodes, answers and encodes each call synchronously, and a lookup keeps nothing
  // of its request: the message, its lists and the 8-byte hashes can be reused.
  decodeRequest: (bytes) => decodeLookupRouteRequest(bytes, REUSE),
  errorsNameFields: true,
  encodeResponse: encodeLookupRouteResponse,
};

/**
 * Arrays the 8-byte prefix hashes of a request are copied into when the caller lets them be
 * reused (`reuse`): the next such decode overwrites them. Grows to the longest chain seen,
 * up to MAX_REUSED_HASHES; hashes past that (a chain longer than any index evaluates by default)
 * are views, so that one huge request does not pin its hashes for the life of the process.
 */
const reusedHashes: Uint8Array[] = [];
const MAX_REUSED_HASHES = 8192;

/**
 * What a decode with `reuse` hands back and the next one overwrites: the result, the message, and
 * a list of prefix hashes per chain length up to MAX_LISTED_HASHES (a list's length is the chain's,
 * and cutting one list to each length would free and regrow its storage). A loaded server decodes
 * thousands of requests a second, and each of these objects made anew is garbage its scavenges
 * pay for. A request whose chain is longer, or has a hash that is not 8 bytes (kept as a view of
 * the request), gets a message and a list of its own, so that nothing reused keeps its bytes
 * alive; a request that names candidate replicas gets a list of them of its own.
 */
const MAX_LISTED_HASHES = 256;
const listsByLength: (Uint8Array[] | undefined)[] = [];
const NO_BYTES = new Uint8Array(0);
const NO_CANDIDATES: readonly string[] = Object.freeze([]);
const reusedMessage: LookupRouteRequest = {
  $typeName: "inferencecache.v1.LookupRouteRequest",
  tenant: "",
  model: "",
  hashScheme: "",
  prefixHashes: [],
  candidateReplicaIds: [],
  maxHints: 0,
};
const reusedResult = { message: reusedMessage };
const reusedReader = new ProtoReader(NO_BYTES);

const REUSE = { reuse: true } as const;

const REQUEST_TAG = {
  tenant: (1 << 3) | WireType.LengthDelimited,
  model: (2 << 3) | WireType.LengthDelimited,
  hashScheme: (3 << 3) | WireType.LengthDelimited,
  prefixHashes: (4 << 3) | WireType.LengthDelimited,
  candidateReplicaIds: (5 << 3) | WireType.LengthDelimited,
  maxHints: (6 << 3) | WireType.Varint,
} as const;

/** LookupRouteRequest's fields by number, as the proto names them, for errors. */
const REQUEST_FIELDS = [
  "",
  "tenant",
  "model",
  "hash_scheme",
  "prefix_hashes",
  "candidate_replica_ids",
  "max_hints",
];

/**
 * The scope of the last request decoded. A gateway sends the same tenant, model and scheme on
 * nearly every call; handing back the same strings spares an allocation and the hashing of a new
 * string in every `Map` they key (about 0.3 µs a call). Module state is safe: decoding is
 * synchronous, and strings are immutable.
 */
const recent = { tenant: "", model: "", hashScheme: "" };

/** Stands for `prefix_hashes[i]` in errors until `i` is known, so that no label is built per hash. */
const PREFIX_HASH_LABEL = "prefix_hashes[?]";

/**
 * Parses a `LookupRouteRequest`, or says what is wrong with the bytes ("tenant is not valid
 * UTF-8", "prefix_hashes[2] runs past the end of the message"). Never throws for bad input.
 * Cost: O(bytes); allocates the message, its two arrays, a view per prefix hash and the strings
 * (but not a tenant, model or scheme equal to the previous request's).
 *
 * With `reuse`, the next decode with `reuse` overwrites the message and its lists, and 8-byte
 * prefix hashes (vLLM's and SGLang's) are copied into arrays it overwrites too, instead of
 * becoming views: a view costs more to make than 8 bytes to copy. For a caller that is done with
 * the message before it decodes another. A gateway's usual request (a chain of at most 256 8-byte
 * hashes, no candidates, the same scope as the last) then allocates nothing, and what is reused
 * never refers to the bytes of a request once it is decoded.
 */
export function decodeLookupRouteRequest(
  bytes: Uint8Array,
  options: { readonly reuse?: boolean } = {},
): DecodeResult<LookupRouteRequest> {
  const reuse = options.reuse === true;
  const reader = reuse ? reusedReader.reset(bytes) : new ProtoReader(bytes);
  let tenant = "";
  let model = "";
  let hashScheme = "";
  let hashCount = 0;
  /**
   * The hashes, once the message is to have a list of its own: from the start without `reuse`,
   * else from the first hash kept as a view of `bytes`. Until then, hash i is `reusedHashes[i]`.
   */
  let own: Uint8Array[] | undefined = reuse ? undefined : [];
  let candidateReplicaIds: string[] | undefined;
  let maxHints = 0;
  let error: string | undefined;
  try {
    fields: while (!reader.done) {
      const tag = reader.tag();
      switch (tag) {
        case REQUEST_TAG.tenant:
          tenant = reader.string("tenant", recent.tenant);
          break;
        case REQUEST_TAG.model:
          model = reader.string("model", recent.model);
          break;
        case REQUEST_TAG.hashScheme:
          hashScheme = reader.string("hash_scheme", recent.hashScheme);
          break;
        case REQUEST_TAG.prefixHashes: {
          // A constant label: the hash's index is filled in only when reading fails.
          if (own === undefined && hashCount < MAX_REUSED_HASHES) {
            let into = reusedHashes[hashCount];
            if (into === undefined) {
              into = new Uint8Array(8);
              reusedHashes.push(into);
            }
            if (reader.bytes8(PREFIX_HASH_LABEL, into) !== undefined) {
              hashCount++;
              break;
            }
          }
          // Read before counted: a hash that fails to read is named by the count.
          const view = reader.bytes(PREFIX_HASH_LABEL);
          own ??= reusedHashes.slice(0, hashCount);
          own.push(view);
          hashCount++;
          break;
        }
        case REQUEST_TAG.candidateReplicaIds: {
          const id = reader.string("candidate_replica_ids");
          candidateReplicaIds ??= [];
          candidateReplicaIds.push(id);
          break;
        }
        case REQUEST_TAG.maxHints:
          maxHints = reader.uint32("max_hints");
          break;
        default: {
          const name = REQUEST_FIELDS[tag >>> 3];
          if (name !== undefined) {
            error = `${name} has wire type ${tag & 7}, which its type does not use`;
            break fields;
          }
          reader.skip(tag);
        }
      }
    }
  } catch (thrown) {
    if (!(thrown instanceof WireFormatError)) throw thrown;
    // A hash that failed to read is the one after those read.
    error = thrown.message.replace(PREFIX_HASH_LABEL, `prefix_hashes[${hashCount}]`);
  }
  // The reused reader lets go of the request's bytes.
  if (reuse) reusedReader.reset(NO_BYTES);
  if (error !== undefined) return { error };
  recent.tenant = tenant;
  recent.model = model;
  recent.hashScheme = hashScheme;
  // With `reuse`, a shared empty list: the service only reads it, and it is frozen against the rest.
  const candidates = candidateReplicaIds ?? (reuse ? (NO_CANDIDATES as string[]) : []);
  if (own !== undefined || hashCount > MAX_LISTED_HASHES) {
    return {
      message: {
        $typeName: "inferencecache.v1.LookupRouteRequest",
        tenant,
        model,
        hashScheme,
        prefixHashes: own ?? reusedHashes.slice(0, hashCount),
        candidateReplicaIds: candidates,
        maxHints,
      },
    };
  }
  reusedMessage.tenant = tenant;
  reusedMessage.model = model;
  reusedMessage.hashScheme = hashScheme;
  reusedMessage.prefixHashes = listOf(hashCount);
  reusedMessage.candidateReplicaIds = candidates;
  reusedMessage.maxHints = maxHints;
  return reusedResult;
}

/**
 * The first `count` reused hashes (at most MAX_LISTED_HASHES), in the list of that length. The
 * reused arrays never change identity once made, so a list is filled when it is made only.
 */
function listOf(count: number): Uint8Array[] {
  let list = listsByLength[count];
  if (list === undefined) {
    list = reusedHashes.slice(0, count);
    listsByLength[count] = list;
  }
  return list;
}

const RESPONSE = "inferencecache.v1.LookupRouteResponse";
const HINT = "inferencecache.v1.ReplicaHint";
const STATS = "inferencecache.v1.ReplicaStats";

/**
 * The buffer responses are written into before being copied out at their exact size, and a view
 * of it for doubles. Reused by every call (encoding is synchronous); grown to the largest response
 * yet, up to MAX_SCRATCH_BYTES, past which a response gets a buffer of its own rather than pinning
 * it.
 */
let scratch = new Uint8Array(4096);
let scratchView = new DataView(scratch.buffer);
const MAX_SCRATCH_BYTES = 1 << 20;
/**
 * The most a hint takes besides its two replica ids' characters: a tag and a length of up to 5
 * bytes for the hint, its stats and each id; two uint32s and two doubles in the hint, two uint32s
 * and a double in the stats, each with its tag; and a negative int32 (10 bytes) for the tier.
 */
const HINT_FIXED_BYTES = 4 * 6 + 4 * 6 + 3 * 9 + 11;

/** LookupRouteResponse's tags and its messages', each one byte (field numbers below 16). */
const TAG = {
  hint: (1 << 3) | WireType.LengthDelimited,
  reasonCode: (2 << 3) | WireType.Varint,
  invalidField: (3 << 3) | WireType.LengthDelimited,
  chainTruncated: (4 << 3) | WireType.Varint,
  evaluatedBlocks: (5 << 3) | WireType.Varint,
  detail: (6 << 3) | WireType.LengthDelimited,
  replicaId: (1 << 3) | WireType.LengthDelimited,
  matchedBlocks: (2 << 3) | WireType.Varint,
  matchedTokens: (3 << 3) | WireType.Varint,
  freshness: (4 << 3) | WireType.Bit64,
  score: (5 << 3) | WireType.Bit64,
  stats: (6 << 3) | WireType.LengthDelimited,
  storageTier: (7 << 3) | WireType.Varint,
  activeRequests: (2 << 3) | WireType.Varint,
  queuedRequests: (3 << 3) | WireType.Varint,
  kvCacheUsage: (4 << 3) | WireType.Bit64,
} as const;

/**
 * Serializes a `LookupRouteResponse` to the bytes protobuf-es's `toBinary` writes for it. Throws
 * protobuf-es's error for a uint32 or enum value out of range. Cost: O(hints + string lengths), in
 * one pass: a nested message's length is given one byte ahead of its body and, in the rare case
 * it needs more, the body is moved up once written. Allocates only the returned buffer.
 */
export function encodeLookupRouteResponse(response: LookupRouteResponse): Buffer {
  const hints = response.hints;
  const { reasonCode, invalidField, chainTruncated, evaluatedBlocks, detail } = response;
  // UTF-8 takes at most 3 bytes per UTF-16 unit, and every other field has a largest size: a
  // reason code of 11 bytes, two strings' tags and lengths, the truncation flag, a uint32.
  let bound = 3 * (invalidField.length + detail.length) + 11 + 2 * 6 + 2 + 6;
  for (const hint of hints) {
    bound += HINT_FIXED_BYTES + 3 * (hint.replicaId.length + (hint.stats?.replicaId.length ?? 0));
  }
  if (scratch.length < bound && bound <= MAX_SCRATCH_BYTES) {
    scratch = new Uint8Array(Math.min(Math.max(bound, 2 * scratch.length), MAX_SCRATCH_BYTES));
    scratchView = new DataView(scratch.buffer);
  }
  const bytes = bound <= scratch.length ? scratch : new Uint8Array(bound);
  const view = bytes === scratch ? scratchView : new DataView(bytes.buffer);
  let pos = 0;
  for (const hint of hints) pos = writeHint(bytes, view, pos, hint);
  pos = int32Field(bytes, pos, TAG.reasonCode, reasonCode, `${RESPONSE}.reason_code`);
  pos = stringField(bytes, pos, TAG.invalidField, invalidField);
  if (chainTruncated) {
    bytes[pos] = TAG.chainTruncated;
    bytes[pos + 1] = 1;
    pos += 2;
  }
  pos = uint32Field(
    bytes,
    pos,
    TAG.evaluatedBlocks,
    evaluatedBlocks,
    `${RESPONSE}.evaluated_blocks`,
  );
  pos = stringField(bytes, pos, TAG.detail, detail);
  // Writes past the end of a typed array are dropped: a bound too small must not pass unseen.
  if (pos > bytes.length) throw new Error(`encoded ${pos} bytes past a bound of ${bytes.length}`);
  const out = Buffer.allocUnsafe(pos);
  out.set(bytes.subarray(0, pos));
  return out;
}

/** Writes `hint` as field 1 of the response at `pos`, checking its values; returns the end. */
function writeHint(bytes: Uint8Array, view: DataView, pos: number, hint: ReplicaHint): number {
  bytes[pos] = TAG.hint;
  const body = pos + 2;
  let p = stringField(bytes, body, TAG.replicaId, hint.replicaId);
  p = uint32Field(bytes, p, TAG.matchedBlocks, hint.matchedBlocks, `${HINT}.matched_blocks`);
  p = uint32Field(bytes, p, TAG.matchedTokens, hint.matchedTokens, `${HINT}.matched_tokens`);
  p = doubleField(bytes, view, p, TAG.freshness, hint.freshness);
  p = doubleField(bytes, view, p, TAG.score, hint.score);
  const stats = hint.stats;
  if (stats !== undefined) {
    bytes[p] = TAG.stats;
    p = writeStats(bytes, view, p + 2, stats);
  }
  p = int32Field(bytes, p, TAG.storageTier, hint.storageTier, `${HINT}.storage_tier`);
  return endNested(bytes, body, p);
}

/** Writes `stats`' fields at `body`, one byte after their length's place; returns the end. */
function writeStats(bytes: Uint8Array, view: DataView, body: number, stats: ReplicaStats): number {
  let p = stringField(bytes, body, TAG.replicaId, stats.replicaId);
  p = uint32Field(bytes, p, TAG.activeRequests, stats.activeRequests, `${STATS}.active_requests`);
  p = uint32Field(bytes, p, TAG.queuedRequests, stats.queuedRequests, `${STATS}.queued_requests`);
  p = doubleField(bytes, view, p, TAG.kvCacheUsage, stats.kvCacheUsage);
  return endNested(bytes, body, p);
}

/*
 * One field each, with its one-byte tag, at `pos`; they return the end. Implicit presence: a zero
 * or empty value is not written (but a double's -0 is).
 */

function stringField(bytes: Uint8Array, pos: number, tag: number, text: string): number {
  if (text === "") return pos;
  bytes[pos] = tag;
  return putString(bytes, pos + 1, text, utf8Length(text));
}

/** Checks `value` first, throwing protobuf-es's error for `field` when it is not a uint32. */
function uint32Field(
  bytes: Uint8Array,
  pos: number,
  tag: number,
  value: number,
  field: string,
): number {
  checkUint32(value, field);
  if (value === 0) return pos;
  bytes[pos] = tag;
  return putUint32(bytes, pos + 1, value);
}

/** Checks `value` first, throwing protobuf-es's error for `field` when it is not an int32. */
function int32Field(
  bytes: Uint8Array,
  pos: number,
  tag: number,
  value: number,
  field: string,
): number {
  checkInt32(value, field);
  if (value === 0) return pos;
  bytes[pos] = tag;
  return putInt32(bytes, pos + 1, value);
}

function doubleField(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  tag: number,
  value: number,
): number {
  if (Object.is(value, 0)) return pos;
  bytes[pos] = tag;
  return putDouble(view, pos + 1, value);
}

/**
 * Writes the length of the nested message written from `body` to `end` into the byte before
 * `body`, moving the body up when the length takes more than that byte; returns the new end.
 */
function endNested(bytes: Uint8Array, body: number, end: number): number {
  const length = end - body;
  if (length < 0x80) {
    bytes[body - 1] = length;
    return end;
  }
  const extra = varintSize(length) - 1;
  bytes.copyWithin(body + extra, body, end);
  putUint32(bytes, body - 1, length);
  return end + extra;
}
