import { describe, expect, it } from "vitest";
import { createUnexpectedErrorLog } from "../src/unexpected-error-log.js";
import { ManualClock } from "./support/manual-clock.js";

function recordingLogger() {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  return {
    lines,
    error: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }),
  };
}

describe("createUnexpectedErrorLog()", () => {
  it("logs a method's first failure, then at most one line per interval saying how many it held back", () => {
    const logger = recordingLogger();
    const clock = new ManualClock();
    const log = createUnexpectedErrorLog({ logger, clock, intervalMs: 10_000 });
    const bug = new Error("a bug");
    for (let i = 0; i < 5; i++) log(bug, "LookupRoute");
    clock.advance(10_000);
    log(bug, "LookupRoute");
    expect(logger.lines).toEqual([
      {
        fields: { err: bug, method: "LookupRoute", suppressed: 0 },
        message: "unexpected error while serving a call",
      },
      {
        fields: { err: bug, method: "LookupRoute", suppressed: 4 },
        message: "unexpected error while serving a call",
      },
    ]);
  });

  it("counts every error, logged or held back", () => {
    const counted: string[] = [];
    const log = createUnexpectedErrorLog({
      logger: recordingLogger(),
      clock: new ManualClock(),
      intervalMs: 10_000,
      count: (method) => counted.push(method),
    });
    for (let i = 0; i < 3; i++) log(new Error("a bug"), "LookupRoute");
    expect(counted).toEqual(["LookupRoute", "LookupRoute", "LookupRoute"]);
  });

  it("throttles each method on its own, so one failing method does not hide another", () => {
    const logger = recordingLogger();
    const log = createUnexpectedErrorLog({ logger, clock: new ManualClock(), intervalMs: 10_000 });
    log(new Error("a"), "LookupRoute");
    log(new Error("a"), "LookupRoute");
    log(new Error("b"), "GET /metrics");
    expect(logger.lines.map((line) => line.fields.method)).toEqual(["LookupRoute", "GET /metrics"]);
  });
});
