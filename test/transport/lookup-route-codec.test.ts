import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type LookupRouteRequest,
  LookupRouteRequestSchema,
  type LookupRouteResponse,
  LookupRouteResponseSchema,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import {
  decodeLookupRouteRequest,
  encodeLookupRouteResponse,
} from "../../src/transport/lookup-route-codec.js";
import { isCollected } from "../support/collected.js";
import { hashOf } from "../support/hashes.js";

/** What protobuf-es makes of `bytes`, unknown fields dropped as the hand-written codec drops them. */
function referenceDecode(bytes: Uint8Array): LookupRouteRequest | undefined {
  try {
    return fromBinary(LookupRouteRequestSchema, bytes, { readUnknownFields: false });
  } catch {
    return undefined;
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Strings of every kind the wire carries: short ASCII, long ASCII, any code point, lone surrogates. */
const text = fc.oneof(
  fc.string({ unit: "binary-ascii", maxLength: 12 }),
  fc.string({ unit: "binary-ascii", minLength: 30, maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    "\ud800",
    "a\udc00b",
    "\ud83d\ude00",
    "x\ud83d",
    "\u00e9t\u00e9",
    "\ufeffbom",
  ),
);
const uint32 = fc.oneof(
  fc.constantFrom(0, 1, 127, 128, 16383, 16384, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const double = fc.oneof(fc.double(), fc.constantFrom(0, -0, Number.NaN, 1, 0.5));

const requestInit = fc.record({
  tenant: text,
  model: text,
  hashScheme: text,
  prefixHashes: fc.array(fc.uint8Array({ maxLength: 70 }), { maxLength: 30 }),
  candidateReplicaIds: fc.array(text, { maxLength: 5 }),
  maxHints: uint32,
});

const statsInit = fc.record({
  replicaId: text,
  activeRequests: uint32,
  queuedRequests: uint32,
  kvCacheUsage: double,
});

const responseInit = fc.record({
  hints: fc.array(
    fc.record({
      replicaId: text,
      matchedBlocks: uint32,
      matchedTokens: uint32,
      freshness: double,
      score: double,
      stats: fc.option(statsInit, { nil: undefined }),
      storageTier: fc.oneof(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      ),
    }),
    { maxLength: 8 },
  ),
  reasonCode: fc.oneof(
    fc.integer({ min: 0, max: 6 }),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  ),
  invalidField: text,
  chainTruncated: fc.boolean(),
  evaluatedBlocks: uint32,
  detail: text,
});

/** Protobuf bytes built field by field: known and unknown field numbers, any wire type, groups. */
function wireMessage(): fc.Arbitrary<Uint8Array> {
  const varint = (value: number) => {
    const out: number[] = [];
    let rest = value >>> 0;
    while (rest >= 0x80) {
      out.push((rest & 0x7f) | 0x80);
      rest >>>= 7;
    }
    out.push(rest);
    return out;
  };
  const { field } = fc.letrec<{ field: number[] }>((tie) => ({
    field: fc.oneof(
      { depthSize: "small" },
      fc
        .tuple(
          fc.integer({ min: 1, max: 9 }),
          fc.integer({ min: 0, max: 5 }),
          fc.uint8Array({ maxLength: 12 }),
        )
        .map(([fieldNo, wireType, payload]) => {
          const tag = varint((fieldNo << 3) | wireType);
          switch (wireType) {
            case 0:
              return [...tag, ...varint(payload.length * 1000 + (payload[0] ?? 0))];
            case 1:
              return [
                ...tag,
                ...payload.subarray(0, 8),
                ...new Uint8Array(8 - Math.min(8, payload.length)),
              ];
            case 2:
              return [...tag, ...varint(payload.length), ...payload];
            case 5:
              return [
                ...tag,
                ...payload.subarray(0, 4),
                ...new Uint8Array(4 - Math.min(4, payload.length)),
              ];
            default:
              return [...tag]; // a stray group start or end
          }
        }),
      fc
        .tuple(fc.integer({ min: 7, max: 9 }), fc.array(tie("field"), { maxLength: 3 }))
        .map(([fieldNo, inner]) => [
          ...varint((fieldNo << 3) | 3),
          ...inner.flat(),
          ...varint((fieldNo << 3) | 4),
        ]),
    ),
  }));
  return fc.array(field, { maxLength: 8 }).map((fields) => new Uint8Array(fields.flat()));
}

/** A valid message's bytes, or those bytes truncated, with a byte changed or with bytes inserted. */
const mutatedRequest = fc.oneof(
  wireMessage(),
  fc
    .tuple(
      requestInit,
      fc.nat(),
      fc.nat({ max: 255 }),
      fc.uint8Array({ minLength: 1, maxLength: 4 }),
    )
    .chain(([init, at, byte, inserted]) => {
      const bytes = toBinary(LookupRouteRequestSchema, create(LookupRouteRequestSchema, init));
      const position = bytes.length === 0 ? 0 : at % bytes.length;
      const changed = bytes.slice();
      changed[position] = byte;
      return fc.constantFrom(
        bytes.subarray(0, position),
        changed,
        new Uint8Array([...bytes.subarray(0, position), ...inserted, ...bytes.subarray(position)]),
      );
    }),
  fc.uint8Array({ maxLength: 40 }),
);

describe("decodeLookupRouteRequest()", () => {
  it("reads whatever protobuf-es writes as protobuf-es reads it", () => {
    fc.assert(
      fc.property(requestInit, fc.boolean(), (init, asBuffer) => {
        const encoded = toBinary(LookupRouteRequestSchema, create(LookupRouteRequestSchema, init));
        const bytes = asBuffer ? Buffer.from(encoded) : encoded;
        const decoded = decodeLookupRouteRequest(bytes);
        expect(decoded.error).toBeUndefined();
        expect(decoded.message).toStrictEqual(referenceDecode(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it("reads the same with reused hash arrays, which the next such decode overwrites", () => {
    fc.assert(
      fc.property(requestInit, mutatedRequest, (init, other) => {
        const bytes = toBinary(LookupRouteRequestSchema, create(LookupRouteRequestSchema, init));
        const reused = decodeLookupRouteRequest(bytes, { reuse: true });
        expect(reused.error).toBeUndefined();
        expect(reused.message).toStrictEqual(referenceDecode(bytes));
        const again = decodeLookupRouteRequest(other, { reuse: true });
        const reference = referenceDecode(other);
        if (again.error === undefined) expect(again.message).toStrictEqual(reference);
      }),
      { numRuns: 500 },
    );
    const first = decodeLookupRouteRequest(
      toBinary(
        LookupRouteRequestSchema,
        create(LookupRouteRequestSchema, { prefixHashes: [hashOf(1)] }),
      ),
      { reuse: true },
    ).message;
    decodeLookupRouteRequest(
      toBinary(
        LookupRouteRequestSchema,
        create(LookupRouteRequestSchema, { prefixHashes: [hashOf(2)] }),
      ),
      { reuse: true },
    );
    expect(first?.prefixHashes[0]).toEqual(hashOf(2));
  });

  it("reuses arrays for the first 8,192 hashes only: a longer chain's tail is read as views", () => {
    const chain = Array.from({ length: 8200 }, (_, i) => hashOf(i + 1));
    const bytes = toBinary(
      LookupRouteRequestSchema,
      create(LookupRouteRequestSchema, { prefixHashes: chain }),
    );
    const first = decodeLookupRouteRequest(bytes, { reuse: true }).message;
    expect(first?.prefixHashes).toEqual(chain);
    const tail = first?.prefixHashes[8199];
    const head = first?.prefixHashes[0];
    expect(tail?.buffer).toBe(bytes.buffer);
    const second = decodeLookupRouteRequest(bytes, { reuse: true }).message;
    // The head's array was reused; the tail is a new view.
    expect(second?.prefixHashes[0]).toBe(head);
    expect(second?.prefixHashes[8199]).not.toBe(tail);
    // Such a request's list is its own: the next decode does not cut it (its reused 8-byte arrays
    // are overwritten, as ever).
    const secondHashes = second?.prefixHashes;
    const short = toBinary(
      LookupRouteRequestSchema,
      create(LookupRouteRequestSchema, { prefixHashes: [hashOf(9)] }),
    );
    const third = decodeLookupRouteRequest(short, { reuse: true }).message;
    expect(third?.prefixHashes).toEqual([hashOf(9)]);
    expect(secondHashes).toHaveLength(8200);
    expect(secondHashes?.[8199]).toEqual(chain[8199]);
  });

  describe("with reuse, keeps nothing of a request's bytes once the next is decoded", () => {
    // 32-byte hashes (vLLM's with integer hashing off) are views of the request's bytes.
    const viewHashes = [1, 2, 3].map((n) => new Uint8Array(32).fill(n));
    const valid = () =>
      toBinary(
        LookupRouteRequestSchema,
        create(LookupRouteRequestSchema, { prefixHashes: viewHashes }),
      );
    const cases: [string, () => Uint8Array][] = [
      ["a request it decodes", valid],
      // Cut inside the third hash: the first two were read.
      ["a truncated request", () => valid().slice(0, -1)],
      // Field 6 (max_hints) sent as length-delimited, after the hashes were read.
      ["a field with the wrong wire type", () => Uint8Array.from([...valid(), 0x32, 0x00])],
    ];
    /** Decodes the request `make` builds, and lets go of it (and of what the decode returned). */
    const decodeAndDrop = (make: () => Uint8Array) => {
      const bytes = make();
      decodeLookupRouteRequest(bytes, { reuse: true });
      return new WeakRef(bytes.buffer);
    };
    it.each(cases)("%s", async (_, make) => {
      const kept = decodeAndDrop(make);
      const next = toBinary(
        LookupRouteRequestSchema,
        create(LookupRouteRequestSchema, { prefixHashes: [hashOf(1)] }),
      );
      expect(decodeLookupRouteRequest(next, { reuse: true }).error).toBeUndefined();
      expect(await isCollected(kept)).toBe(true);
    });

    it("the last request, with none decoded after it", async () => {
      const kept = decodeAndDrop(() =>
        toBinary(
          LookupRouteRequestSchema,
          create(LookupRouteRequestSchema, { prefixHashes: [hashOf(1), hashOf(2)] }),
        ),
      );
      expect(await isCollected(kept)).toBe(true);
    });
  });

  it("with reuse, hands back the same message and lists, cut to each request's length", () => {
    const encode = (init: Parameters<typeof create<typeof LookupRouteRequestSchema>>[1]) =>
      toBinary(LookupRouteRequestSchema, create(LookupRouteRequestSchema, init));
    const long = encode({
      tenant: "t",
      prefixHashes: [hashOf(1), hashOf(2), hashOf(3)],
      candidateReplicaIds: ["a", "b"],
      maxHints: 3,
    });
    const first = decodeLookupRouteRequest(long, { reuse: true }).message;
    const short = (hash: Uint8Array) =>
      decodeLookupRouteRequest(encode({ model: "m", prefixHashes: [hash] }), { reuse: true })
        .message;
    const second = short(hashOf(4));
    expect(second).toBe(first);
    expect(second).toStrictEqual(
      create(LookupRouteRequestSchema, { model: "m", prefixHashes: [hashOf(4)] }),
    );
    // The list of a chain's length is reused by the next chain of that length.
    const secondHashes = second?.prefixHashes;
    expect(short(hashOf(5))?.prefixHashes).toBe(secondHashes);
    expect(secondHashes).toEqual([hashOf(5)]);
    // A hash that is not 8 bytes is a view of the request: that list is the request's own.
    const odd = new Uint8Array([1, 2, 3]);
    const withView = short(odd)?.prefixHashes;
    expect(withView).toEqual([odd]);
    expect(withView).not.toBe(secondHashes);
    expect(short(hashOf(6))?.prefixHashes).toBe(secondHashes);
    expect(withView).toEqual([odd]);
    // A request that fails to decode leaves nothing of itself for the next.
    const truncated = long.subarray(0, long.length - 1);
    expect(decodeLookupRouteRequest(truncated, { reuse: true }).error).toBeDefined();
    expect(decodeLookupRouteRequest(long, { reuse: true }).message).toStrictEqual(
      create(LookupRouteRequestSchema, {
        tenant: "t",
        prefixHashes: [hashOf(1), hashOf(2), hashOf(3)],
        candidateReplicaIds: ["a", "b"],
        maxHints: 3,
      }),
    );
  });

  it("agrees with protobuf-es on any bytes it accepts, and fails on any bytes protobuf-es fails on", () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(mutatedRequest, (bytes) => {
        const decoded = decodeLookupRouteRequest(bytes);
        const reference = referenceDecode(bytes);
        if (decoded.error === undefined) {
          accepted++;
          expect(decoded.message).toStrictEqual(reference);
        } else {
          rejected++;
          expect(decoded.error).toMatch(/\S/);
        }
        if (reference === undefined) expect(decoded.error).toBeDefined();
      }),
      { numRuns: 3000 },
    );
    // Both branches must have been exercised for the property to mean anything.
    expect(accepted).toBeGreaterThan(300);
    expect(rejected).toBeGreaterThan(300);
  });

  it("reads a run of requests from a few scopes as protobuf-es does, repeated strings included", () => {
    // Names that repeat from one request to the next, as a gateway's do, and some that must not be
    // taken for one another: the same length, non-ASCII, and a Latin-1 byte that is not UTF-8.
    const name = fc.constantFrom(
      "bench",
      "bencH",
      "mooncake",
      "\u00e9",
      "a\u00e9",
      "",
      "x".repeat(40),
    );
    const scope = fc.record({ tenant: name, model: name, hashScheme: name });
    const latin1 = new Uint8Array([0x0a, 0x01, 0xe9]); // tenant: the byte 0xE9, invalid UTF-8
    fc.assert(
      fc.property(
        fc.array(fc.oneof(scope, fc.constant(undefined)), { maxLength: 20 }),
        (scopes) => {
          for (const init of scopes) {
            const bytes =
              init === undefined
                ? latin1
                : toBinary(LookupRouteRequestSchema, create(LookupRouteRequestSchema, init));
            const decoded = decodeLookupRouteRequest(bytes);
            if (init === undefined) {
              expect(decoded).toEqual({ error: "tenant is not valid UTF-8" });
            } else {
              expect(decoded.message).toStrictEqual(referenceDecode(bytes));
            }
          }
        },
      ),
    );
  });

  it("returns prefix hashes as views of the request's bytes, not copies", () => {
    const bytes = Buffer.from([0x22, 0x02, 0xaa, 0xbb, 0x22, 0x01, 0xcc]);
    const { message } = decodeLookupRouteRequest(bytes);
    expect(message?.prefixHashes.map(hex)).toEqual(["aabb", "cc"]);
    expect(message?.prefixHashes[1]?.buffer).toBe(bytes.buffer);
  });

  it.each([
    [
      "the last of a repeated singular field",
      [0x0a, 0x01, 0x61, 0x0a, 0x01, 0x62],
      { tenant: "b" },
    ],
    [
      "a tenant after a BOM, which TextDecoder drops",
      [0x0a, 0x04, 0xef, 0xbb, 0xbf, 0x41],
      { tenant: "A" },
    ],
    [
      "max_hints as a 10-byte varint, keeping its low 32 bits",
      [0x30, ...Array(9).fill(0xff), 0x01],
      { maxHints: 0xffffffff },
    ],
    ["an unknown varint", [0x38, 0x96, 0x01, 0x0a, 0x01, 0x61], { tenant: "a" }],
    ["an unknown fixed64", [0x39, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x01, 0x61], { tenant: "a" }],
    [
      "an unknown length-delimited field",
      [0x3a, 0x02, 0xff, 0xfe, 0x0a, 0x01, 0x61],
      { tenant: "a" },
    ],
    ["an unknown fixed32", [0x3d, 1, 2, 3, 4, 0x0a, 0x01, 0x61], { tenant: "a" }],
    [
      "an unknown group holding a group",
      [0x3b, 0x43, 0x08, 0x01, 0x44, 0x3c, 0x0a, 0x01, 0x61],
      { tenant: "a" },
    ],
  ])("accepts %s", (_, bytes, expected) => {
    const input = new Uint8Array(bytes);
    const decoded = decodeLookupRouteRequest(input);
    expect(decoded.message).toMatchObject(expected);
    expect(decoded.message).toStrictEqual(referenceDecode(input));
  });

  it.each([
    ["a truncated string", [0x0a, 0x05, 0x61], "tenant runs past the end of the message"],
    ["invalid UTF-8 in a short string", [0x12, 0x02, 0xc3, 0x28], "model is not valid UTF-8"],
    [
      "invalid UTF-8 in a long string",
      [0x1a, 40, ...Array(39).fill(0x61), 0xff],
      "hash_scheme is not valid UTF-8",
    ],
    [
      "invalid UTF-8 in a candidate",
      [0x2a, 0x01, 0x80],
      "candidate_replica_ids is not valid UTF-8",
    ],
    [
      "a truncated first prefix hash",
      [0x22, 0x05, 0x01],
      "prefix_hashes[0] runs past the end of the message",
    ],
    [
      "a truncated third prefix hash",
      [0x22, 0x01, 0x01, 0x22, 0x00, 0x22, 0x09, 0x01],
      "prefix_hashes[2] runs past the end of the message",
    ],
    ["a truncated length", [0x22, 0x80], "prefix_hashes[0] is truncated"],
    ["a truncated max_hints", [0x30, 0x80], "max_hints is truncated"],
    [
      "a varint of 11 bytes",
      [0x30, ...Array(10).fill(0x80), 0x01],
      "max_hints is a varint longer than 10 bytes",
    ],
    [
      "a string sent as a varint",
      [0x08, 0x00],
      "tenant has wire type 0, which its type does not use",
    ],
    [
      "max_hints sent as a string",
      [0x32, 0x00],
      "max_hints has wire type 2, which its type does not use",
    ],
    ["field number 0", [0x02, 0x00], "illegal tag: field 0, wire type 2"],
    ["wire type 7", [0x0f], "illegal tag: field 1, wire type 7"],
    ["a tag over 32 bits", [0x80, 0x80, 0x80, 0x80, 0x10], "tag does not fit in 32 bits"],
    ["a truncated tag", [0x80], "tag is truncated"],
    ["a stray end-group tag", [0x3c], "field 7: unexpected end-group tag"],
    [
      "a group ended by another field's tag",
      [0x3b, 0x44],
      "field 7: group ends with the end tag of field 8",
    ],
    ["an unterminated group", [0x3b], "tag is truncated"],
    [
      "groups nested 100 deep",
      [...Array(100).fill(0x3b), ...Array(100).fill(0x3c)],
      "field 7: groups nest too deeply",
    ],
    ["a truncated unknown varint", [0x38, 0x80], "field 7 is truncated"],
    ["a truncated unknown fixed64", [0x39, 1, 2, 3], "field 7 runs past the end of the message"],
    ["a truncated unknown fixed32", [0x3d, 1], "field 7 runs past the end of the message"],
    [
      "an unknown field longer than the message",
      [0x3a, 0x05],
      "field 7 runs past the end of the message",
    ],
  ])("rejects %s, naming the problem", (_, bytes, error) => {
    const input = new Uint8Array(bytes);
    expect(decodeLookupRouteRequest(input)).toEqual({ error });
  });

  it("rejects everything protobuf-es rejects among the cases above", () => {
    // Groups nested 99 deep are still fine for both.
    const deep = new Uint8Array([...Array(99).fill(0x3b), ...Array(99).fill(0x3c)]);
    expect(decodeLookupRouteRequest(deep).error).toBeUndefined();
    expect(referenceDecode(deep)).toBeDefined();
    const tooDeep = new Uint8Array([...Array(100).fill(0x3b), ...Array(100).fill(0x3c)]);
    expect(referenceDecode(tooDeep)).toBeUndefined();
  });
});

describe("encodeLookupRouteResponse()", () => {
  it("writes the same bytes as protobuf-es for any response", () => {
    fc.assert(
      fc.property(responseInit, (init) => {
        const response = create(LookupRouteResponseSchema, init);
        expect(hex(encodeLookupRouteResponse(response))).toBe(
          hex(toBinary(LookupRouteResponseSchema, response)),
        );
      }),
      { numRuns: 1000 },
    );
  });

  it("writes responses that protobuf-es reads back as sent, unset stats included", () => {
    const response = create(LookupRouteResponseSchema, {
      hints: [
        { replicaId: "pod-a", matchedBlocks: 2, matchedTokens: 32, freshness: 1, score: 32 },
        {
          replicaId: "pod-\u00e9",
          matchedBlocks: 1,
          freshness: -0,
          stats: { replicaId: "pod-\u00e9", activeRequests: 3, kvCacheUsage: 0.42 },
        },
      ],
      reasonCode: 1,
      chainTruncated: true,
      evaluatedBlocks: 3,
      detail: "\ud83d\ude00",
    });
    const decoded = fromBinary(LookupRouteResponseSchema, encodeLookupRouteResponse(response));
    expect(decoded).toStrictEqual(response);
    expect(Object.is(decoded.hints[1]?.freshness, -0)).toBe(true);
  });

  it.each([
    ["a body of 127 bytes", "r".repeat(98), 1],
    ["bodies of 128 bytes and more", "r".repeat(99), 1],
    ["3-byte characters", "\u20ac".repeat(700), 1],
    ["surrogate pairs and lone surrogates", "\ud83d\ude00\ud800x".repeat(300), 2],
    ["a response larger than a megabyte", "\u20ac".repeat(60_000), 8],
  ])("writes the same bytes as protobuf-es for %s", (_, replicaId, count) => {
    const response = create(LookupRouteResponseSchema, {
      hints: Array.from({ length: count }, () => ({
        replicaId,
        matchedBlocks: 2 ** 32 - 1,
        matchedTokens: 2 ** 31,
        freshness: 0.5,
        score: -1,
        stats: { replicaId, activeRequests: 2 ** 32 - 1, queuedRequests: 1, kvCacheUsage: 1 },
        storageTier: -1,
      })),
      reasonCode: -5 as number,
      invalidField: replicaId,
      chainTruncated: true,
      evaluatedBlocks: 2 ** 32 - 1,
      detail: replicaId,
    });
    expect(hex(encodeLookupRouteResponse(response))).toBe(
      hex(toBinary(LookupRouteResponseSchema, response)),
    );
  });

  it.each([65, 1024, 1025, 3000])("handles %i hints, past its first scratch space", (count) => {
    const response = create(LookupRouteResponseSchema, {
      hints: Array.from({ length: count }, (_, i) => ({
        replicaId: `r${i}`,
        matchedBlocks: i,
        stats: { replicaId: `r${i}`, activeRequests: i },
      })),
    });
    expect(hex(encodeLookupRouteResponse(response))).toBe(
      hex(toBinary(LookupRouteResponseSchema, response)),
    );
  });

  const invalidUint32 = fc.oneof(
    fc.integer({ min: -(2 ** 40), max: -1 }),
    fc.integer({ min: 2 ** 32, max: 2 ** 50 }),
    fc.double({ noInteger: true }),
  );
  const invalidInt32 = fc.oneof(
    fc.integer({ min: 2 ** 31, max: 2 ** 50 }),
    fc.integer({ min: -(2 ** 50), max: -(2 ** 31) - 1 }),
    fc.double({ noInteger: true }),
  );
  /** Sets one field of a response that has a hint with stats; create() would not check values. */
  const invalidFields: ReadonlyArray<
    [string, fc.Arbitrary<number>, (response: LookupRouteResponse, value: number) => void]
  > = [
    [
      "evaluated_blocks",
      invalidUint32,
      (r, v) => {
        r.evaluatedBlocks = v;
      },
    ],
    [
      "reason_code",
      invalidInt32,
      (r, v) => {
        r.reasonCode = v;
      },
    ],
    [
      "matched_blocks",
      invalidUint32,
      (r, v) => {
        if (r.hints[0]) r.hints[0].matchedBlocks = v;
      },
    ],
    [
      "matched_tokens",
      invalidUint32,
      (r, v) => {
        if (r.hints[0]) r.hints[0].matchedTokens = v;
      },
    ],
    [
      "active_requests",
      invalidUint32,
      (r, v) => {
        if (r.hints[0]?.stats) r.hints[0].stats.activeRequests = v;
      },
    ],
    [
      "queued_requests",
      invalidUint32,
      (r, v) => {
        if (r.hints[0]?.stats) r.hints[0].stats.queuedRequests = v;
      },
    ],
  ];

  it.each(invalidFields)("throws protobuf-es's error for %s out of range", (name, values, set) => {
    fc.assert(
      fc.property(values, (value) => {
        const response = create(LookupRouteResponseSchema, {
          hints: [{ replicaId: "a", stats: {} }],
        });
        set(response, value);
        let expected = "";
        try {
          toBinary(LookupRouteResponseSchema, response);
        } catch (error) {
          expected = (error as Error).message;
        }
        expect(expected).toContain(`.${name} to binary: invalid`);
        expect(() => encodeLookupRouteResponse(response)).toThrow(expected);
      }),
      { numRuns: 100 },
    );
  });
});
