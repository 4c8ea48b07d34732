import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  type LookupRouteResponse,
  LookupRouteResponseSchema,
  ReasonCode,
  StorageTier,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import type { RouteAnswer } from "../../src/core/types.js";
import {
  createReusingRouteAnswerConverter,
  lookupRouteResponse,
  routeAnswerToProto,
} from "../../src/service/message-conversion.js";

const noAnswer = {
  hints: [],
  invalidField: "",
  chainTruncated: false,
  evaluatedBlocks: 0,
  detail: "",
} as const;

const answers: ReadonlyArray<[string, RouteAnswer, ReasonCode]> = [
  [
    "a prefix match, with and without stats",
    {
      ...noAnswer,
      reason: "prefix-match",
      hints: [
        {
          replicaId: "pod-a",
          matchedBlocks: 3,
          matchedTokens: 48,
          freshness: 0.75,
          tier: "cpu",
          score: 36,
          stats: { activeRequests: 2, queuedRequests: 1, kvCacheUsage: 0.5 },
        },
        {
          replicaId: "pod-b",
          matchedBlocks: 1,
          matchedTokens: 16,
          freshness: 1,
          tier: "gpu",
          score: 16,
          stats: undefined,
        },
      ],
      chainTruncated: true,
      evaluatedBlocks: 8,
    },
    ReasonCode.PREFIX_MATCH,
  ],
  [
    "a prefix match, stats on the second hint only",
    {
      ...noAnswer,
      reason: "prefix-match",
      hints: [
        {
          replicaId: "pod-c",
          matchedBlocks: 2,
          matchedTokens: 32,
          freshness: 0.5,
          tier: "disk",
          score: 4,
          stats: undefined,
        },
        {
          replicaId: "pod-d",
          matchedBlocks: 2,
          matchedTokens: 32,
          freshness: 0.25,
          tier: "other",
          score: 2,
          stats: { activeRequests: 0, queuedRequests: 7, kvCacheUsage: 1 },
        },
      ],
      evaluatedBlocks: 2,
    },
    ReasonCode.PREFIX_MATCH,
  ],
  [
    "an invalid request",
    { ...noAnswer, reason: "invalid-request", invalidField: "prefix_hashes[3]", detail: "empty" },
    ReasonCode.INVALID_REQUEST,
  ],
  ["no hint", { ...noAnswer, reason: "no-hint", evaluatedBlocks: 2 }, ReasonCode.NO_HINT],
  [
    "a missing scheme",
    { ...noAnswer, reason: "hash-scheme-missing", detail: "hash_scheme is required" },
    ReasonCode.HASH_SCHEME_MISSING,
  ],
];

function expectedMessage(answer: RouteAnswer, reasonCode: ReasonCode): LookupRouteResponse {
  return create(LookupRouteResponseSchema, {
    hints: answer.hints.map((hint) => ({
      replicaId: hint.replicaId,
      matchedBlocks: hint.matchedBlocks,
      matchedTokens: hint.matchedTokens,
      freshness: hint.freshness,
      score: hint.score,
      stats: hint.stats && { replicaId: hint.replicaId, ...hint.stats },
      storageTier: {
        gpu: StorageTier.GPU,
        cpu: StorageTier.CPU,
        disk: StorageTier.DISK,
        other: StorageTier.OTHER,
      }[hint.tier],
    })),
    reasonCode,
    invalidField: answer.invalidField,
    chainTruncated: answer.chainTruncated,
    evaluatedBlocks: answer.evaluatedBlocks,
    detail: answer.detail,
  });
}

function expectSameMessage(message: LookupRouteResponse, expected: LookupRouteResponse): void {
  // toEqual treats an unset `stats: undefined` as absent, as protobuf-es does, and nothing else.
  expect(message).toEqual(expected);
  expect(Object.keys(message)).toEqual(Object.keys(expected));
  expect(toBinary(LookupRouteResponseSchema, message)).toEqual(
    toBinary(LookupRouteResponseSchema, expected),
  );
}

describe("routeAnswerToProto()", () => {
  it.each(answers)("builds the message create() would for %s", (_, answer, reasonCode) => {
    expectSameMessage(routeAnswerToProto(answer), expectedMessage(answer, reasonCode));
  });
});

describe("createReusingRouteAnswerConverter()", () => {
  it("builds each answer's message into one object, whatever answers came before", () => {
    const convert = createReusingRouteAnswerConverter();
    // Every answer after every other: lists that grow and shrink, stats that come and go.
    const sequence = answers.flatMap((first) => answers.flatMap((second) => [first, second]));
    const first = convert(sequence[0]?.[1] as RouteAnswer);
    for (const [, answer, reasonCode] of sequence) {
      const message = convert(answer);
      expect(message).toBe(first);
      expectSameMessage(message, expectedMessage(answer, reasonCode));
    }
  });
});

describe("lookupRouteResponse()", () => {
  it("builds a response with no hints, as create() would", () => {
    const message = lookupRouteResponse(ReasonCode.NOT_READY, "the index is starting up");
    const expected = create(LookupRouteResponseSchema, {
      reasonCode: ReasonCode.NOT_READY,
      detail: "the index is starting up",
    });
    expect(message).toStrictEqual(expected);
  });
});
