import { describe, expect, it } from "vitest";
import {
  decideSeq,
  type SeqDecision,
  type SeqOrigin,
} from "../../src/kv-stream/stream-sequencer.js";

describe("decideSeq()", () => {
  it.each<[string, bigint | undefined, bigint, SeqOrigin, SeqDecision]>([
    [
      "takes the first live batch as the baseline, whatever its seq",
      undefined,
      41n,
      "live",
      { action: "apply" },
    ],
    [
      "takes a first live batch at seq 0 as the baseline",
      undefined,
      0n,
      "live",
      { action: "apply" },
    ],
    [
      "takes the first replayed batch as the baseline",
      undefined,
      9n,
      "replay",
      { action: "apply" },
    ],
    ["applies the next live batch", 41n, 42n, "live", { action: "apply" }],
    ["applies the next replayed batch", 41n, 42n, "replay", { action: "apply" }],
    [
      "sees a gap from the first missing seq",
      41n,
      45n,
      "live",
      { action: "gap", firstMissing: 42n },
    ],
    ["sees a gap of one batch", 41n, 43n, "live", { action: "gap", firstMissing: 42n }],
    ["sees a gap in a replay", 41n, 43n, "replay", { action: "gap", firstMissing: 42n }],
    ["sees a restart when live seq goes back to 0", 41n, 0n, "live", { action: "restart" }],
    ["sees a restart when a live seq repeats", 41n, 41n, "live", { action: "restart" }],
    ["skips a replayed batch already applied", 41n, 41n, "replay", { action: "skip" }],
    ["skips an older replayed batch", 41n, 3n, "replay", { action: "skip" }],
    ["works past 2^53", 2n ** 60n, 2n ** 60n + 1n, "live", { action: "apply" }],
    [
      "works up to 2^64 - 2",
      0xffff_ffff_ffff_fffdn,
      0xffff_ffff_ffff_fffen,
      "live",
      { action: "apply" },
    ],
  ])("%s", (_, lastApplied, seq, origin, expected) => {
    expect(decideSeq(lastApplied, seq, origin)).toEqual(expected);
  });
});
