import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  LookupRouteRequestSchema,
  PublishEventRequestSchema,
  ReportCacheStateRequestSchema,
} from "../../gen/inferencecache/v1/cache_index_pb.js";
import { wireProblem } from "../../src/transport/wire-problem.js";

/** A valid ReportCacheStateRequest with two prefixes and stats, as bytes. */
const report = toBinary(
  ReportCacheStateRequestSchema,
  create(ReportCacheStateRequestSchema, {
    tenant: "acme",
    model: "m",
    replicaId: "pod-a",
    hashScheme: "s",
    prefixes: [
      { prefixHash: Uint8Array.of(1, 2), tokenCount: 16 },
      { prefixHash: Uint8Array.of(3, 4), tokenCount: 32 },
    ],
    stats: { activeRequests: 3, kvCacheUsage: 0.5 },
  }),
);

function parses(schema: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromBinary(schema, bytes);
    return true;
  } catch {
    return false;
  }
}

describe("wireProblem()", () => {
  it.each([
    [
      "a string that runs past the end",
      [0x0a, 0x05, 0x61],
      "tenant runs past the end of the message",
    ],
    ["a string that is not UTF-8", [0x0a, 0x02, 0xc3, 0x28], "tenant is not valid UTF-8"],
    [
      "a repeated field's element, by index",
      [0x22, 0x01, 0x01, 0x22, 0x09, 0x01],
      "prefix_hashes[1] runs past the end of the message",
    ],
    ["a varint cut short", [0x30, 0xff], "max_hints is truncated"],
    ["an unknown field", [0x7a, 0x03, 0x01], "field 15 runs past the end of the message"],
    ["a tag cut short", [0x0a, 0x00, 0xff], "tag is truncated"],
  ])("names %s", (_, bytes, problem) => {
    expect(wireProblem(LookupRouteRequestSchema, Uint8Array.from(bytes))).toBe(problem);
  });

  it("names a field of a message inside a list by its path", () => {
    // prefixes (field 5) holding a prefix_hash (field 1) that claims 9 bytes and carries 1.
    const bytes = Uint8Array.of(0x2a, 0x03, 0x0a, 0x09, 0x01);
    expect(wireProblem(ReportCacheStateRequestSchema, bytes)).toBe(
      "prefixes[0].prefix_hash runs past the end of the message",
    );
  });

  it("finds no problem in a valid request", () => {
    expect(wireProblem(ReportCacheStateRequestSchema, report)).toBeUndefined();
  });

  it("reads a known field as its type says, as protobuf-es does, whatever its wire type", () => {
    // Field 1 (tenant, a string) as a varint tag: protobuf-es reads a length, 0, and goes on.
    expect(wireProblem(LookupRouteRequestSchema, Uint8Array.of(0x08, 0x00))).toBeUndefined();
    expect(parses(LookupRouteRequestSchema, Uint8Array.of(0x08, 0x00))).toBe(true);
    // Field 6 (max_hints, a uint32) as length-delimited: read as a varint, 2, then the tag 0x01.
    const mistyped = Uint8Array.of(0x32, 0x02, 0x01);
    expect(parses(LookupRouteRequestSchema, mistyped)).toBe(false);
    expect(wireProblem(LookupRouteRequestSchema, mistyped)).toBe(
      "illegal tag: field 0, wire type 1",
    );
  });

  it("finds a problem wherever protobuf-es does, in cut and corrupted requests", () => {
    const schemas = [
      ReportCacheStateRequestSchema,
      LookupRouteRequestSchema,
      PublishEventRequestSchema,
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...schemas),
        fc.nat(report.length),
        fc.array(fc.tuple(fc.nat(report.length), fc.integer({ min: 0, max: 255 })), {
          maxLength: 3,
        }),
        (schema, cut, edits) => {
          const bytes = Uint8Array.from(report.subarray(0, cut));
          for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
          // Stricter than protobuf-es only where a nested message's fields overrun its length.
          if (!parses(schema, bytes)) expect(wireProblem(schema, bytes)).toBeDefined();
        },
      ),
      { numRuns: 3_000 },
    );
  });
});
