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
  int32Size,
  ProtoWriter,
  utf8Length,
  varintSize,
} from "./proto-writer.js";

/**
 * A hand-written codec for LookupRoute, the call every gateway request makes. On a trace request
 * (a 24-block chain, 4 hints) protobuf-es's reflection-based `fromBinary` and `toBinary` cost about
 * 5 µs and 25 µs; this costs about 0.4 µs and 0.5 µs in the gRPC server, which lets the decode
 * reuse what it builds (see `decodeLookupRouteRequest`).
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

/** The first `count` reused hashes (at most MAX_LISTED_HASHES), in the list of that length. */
function listOf(count: number): Uint8Array[] {
  let list = listsByLength[count];
  if (list === undefined) {
    list = Array.from({ length: count }, () => NO_BYTES);
    listsByLength[count] = list;
  }
  for (let i = 0; i < count; i++) list[i] = reusedHashes[i] as Uint8Array;
  return list;
}

const RESPONSE = "inferencecache.v1.LookupRouteResponse";
const HINT = "inferencecache.v1.ReplicaHint";
const STATS = "inferencecache.v1.ReplicaStats";

/**
 * Sizes worked out for each hint before writing, so that nothing is measured twice: per hint,
 * `[hint body, replica_id bytes, stats body or -1 when unset, stats.replica_id bytes]`. Reused by
 * every call (encoding is synchronous) and grown as needed up to `MAX_SHARED_HINTS` hints (the
 * service sends at most 64); a larger response gets scratch of its own rather than pinning it.
 */
const HINT_SLOTS = 4;
const MAX_SHARED_HINTS = 1024;
let hintSizes = new Int32Array(64 * HINT_SLOTS);

/**
 * Serializes a `LookupRouteResponse` to the bytes protobuf-es's `toBinary` writes for it. Throws
 * protobuf-es's error for a uint32 or enum value out of range. Cost: O(hints + string lengths),
 * two passes (sizes, then bytes) into one buffer of the exact size; allocates only that buffer.
 */
export function encodeLookupRouteResponse(response: LookupRouteResponse): Buffer {
  const hints = response.hints;
  const count = hints.length;
  if (hintSizes.length < count * HINT_SLOTS && count <= MAX_SHARED_HINTS) {
    hintSizes = new Int32Array(MAX_SHARED_HINTS * HINT_SLOTS);
  }
  const sizes = count <= MAX_SHARED_HINTS ? hintSizes : new Int32Array(count * HINT_SLOTS);
  let size = 0;
  for (let index = 0; index < count; index++) {
    const body = measureHint(hints[index] as ReplicaHint, sizes, index * HINT_SLOTS);
    size += 1 + varintSize(body) + body;
  }
  const { reasonCode, invalidField, chainTruncated, evaluatedBlocks, detail } = response;
  checkInt32(reasonCode, `${RESPONSE}.reason_code`);
  if (reasonCode !== 0) size += 1 + int32Size(reasonCode);
  const invalidFieldBytes = utf8Length(invalidField);
  if (invalidFieldBytes > 0) size += 1 + varintSize(invalidFieldBytes) + invalidFieldBytes;
  if (chainTruncated) size += 2;
  checkUint32(evaluatedBlocks, `${RESPONSE}.evaluated_blocks`);
  if (evaluatedBlocks !== 0) size += 1 + varintSize(evaluatedBlocks);
  const detailBytes = utf8Length(detail);
  if (detailBytes > 0) size += 1 + varintSize(detailBytes) + detailBytes;

  const writer = new ProtoWriter(size);
  for (let index = 0; index < count; index++) {
    writeHint(writer, hints[index] as ReplicaHint, sizes, index * HINT_SLOTS);
  }
  if (reasonCode !== 0) writer.tag(2, WireType.Varint).int32(reasonCode);
  if (invalidFieldBytes > 0) {
    writer.tag(3, WireType.LengthDelimited).string(invalidField, invalidFieldBytes);
  }
  if (chainTruncated) writer.tag(4, WireType.Varint).bool(true);
  if (evaluatedBlocks !== 0) writer.tag(5, WireType.Varint).uint32(evaluatedBlocks);
  if (detailBytes > 0) writer.tag(6, WireType.LengthDelimited).string(detail, detailBytes);
  return writer.finish();
}

/** Checks a hint's values, records its sizes at `sizes[at..at + 3]` and returns its body's size. */
function measureHint(hint: ReplicaHint, sizes: Int32Array, at: number): number {
  let size = 0;
  const replicaIdBytes = utf8Length(hint.replicaId);
  if (replicaIdBytes > 0) size += 1 + varintSize(replicaIdBytes) + replicaIdBytes;
  checkUint32(hint.matchedBlocks, `${HINT}.matched_blocks`);
  if (hint.matchedBlocks !== 0) size += 1 + varintSize(hint.matchedBlocks);
  checkUint32(hint.matchedTokens, `${HINT}.matched_tokens`);
  if (hint.matchedTokens !== 0) size += 1 + varintSize(hint.matchedTokens);
  if (!Object.is(hint.freshness, 0)) size += 9;
  if (!Object.is(hint.score, 0)) size += 9;
  let statsBody = -1;
  let statsReplicaIdBytes = 0;
  const stats = hint.stats;
  if (stats !== undefined) {
    statsReplicaIdBytes = utf8Length(stats.replicaId);
    statsBody = measureStats(stats, statsReplicaIdBytes);
    size += 1 + varintSize(statsBody) + statsBody;
  }
  checkInt32(hint.storageTier, `${HINT}.storage_tier`);
  if (hint.storageTier !== 0) size += 1 + int32Size(hint.storageTier);
  sizes[at] = size;
  sizes[at + 1] = replicaIdBytes;
  sizes[at + 2] = statsBody;
  sizes[at + 3] = statsReplicaIdBytes;
  return size;
}

function measureStats(stats: ReplicaStats, replicaIdBytes: number): number {
  let size = 0;
  if (replicaIdBytes > 0) size += 1 + varintSize(replicaIdBytes) + replicaIdBytes;
  checkUint32(stats.activeRequests, `${STATS}.active_requests`);
  if (stats.activeRequests !== 0) size += 1 + varintSize(stats.activeRequests);
  checkUint32(stats.queuedRequests, `${STATS}.queued_requests`);
  if (stats.queuedRequests !== 0) size += 1 + varintSize(stats.queuedRequests);
  if (!Object.is(stats.kvCacheUsage, 0)) size += 9;
  return size;
}

/** Writes hints[i] as field 1 of the response, with the sizes `measureHint` recorded at `at`. */
function writeHint(writer: ProtoWriter, hint: ReplicaHint, sizes: Int32Array, at: number): void {
  writer.fork(1, sizes[at] as number);
  const replicaIdBytes = sizes[at + 1] as number;
  if (replicaIdBytes > 0) {
    writer.tag(1, WireType.LengthDelimited).string(hint.replicaId, replicaIdBytes);
  }
  if (hint.matchedBlocks !== 0) writer.tag(2, WireType.Varint).uint32(hint.matchedBlocks);
  if (hint.matchedTokens !== 0) writer.tag(3, WireType.Varint).uint32(hint.matchedTokens);
  if (!Object.is(hint.freshness, 0)) writer.tag(4, WireType.Bit64).double(hint.freshness);
  if (!Object.is(hint.score, 0)) writer.tag(5, WireType.Bit64).double(hint.score);
  const stats = hint.stats;
  const statsBody = sizes[at + 2] as number;
  if (stats !== undefined && statsBody >= 0) {
    writer.fork(6, statsBody);
    const statsReplicaIdBytes = sizes[at + 3] as number;
    if (statsReplicaIdBytes > 0) {
      writer.tag(1, WireType.LengthDelimited).string(stats.replicaId, statsReplicaIdBytes);
    }
    if (stats.activeRequests !== 0) writer.tag(2, WireType.Varint).uint32(stats.activeRequests);
    if (stats.queuedRequests !== 0) writer.tag(3, WireType.Varint).uint32(stats.queuedRequests);
    if (!Object.is(stats.kvCacheUsage, 0)) {
      writer.tag(4, WireType.Bit64).double(stats.kvCacheUsage);
    }
  }
  if (hint.storageTier !== 0) writer.tag(7, WireType.Varint).int32(hint.storageTier);
}
