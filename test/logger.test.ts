import type { DestinationStream, LevelWithSilent } from "pino";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";

/** A destination that keeps every line it is given, parsed. */
function collectingDestination(): DestinationStream & {
  readonly lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    write(line: string) {
      lines.push(JSON.parse(line));
    },
  };
}

describe("createLogger()", () => {
  it("writes one JSON line with the level name, message, time and service", () => {
    const destination = collectingDestination();
    createLogger({ level: "info", destination }).info({ replicas: 3 }, "index ready");

    expect(destination.lines).toEqual([
      {
        level: "info",
        time: expect.any(Number),
        service: "inference-cache-index",
        replicas: 3,
        msg: "index ready",
      },
    ]);
  });

  it("ends every write with a newline, so the output is JSON lines", () => {
    const written: string[] = [];
    const logger = createLogger({
      level: "info",
      destination: { write: (line) => written.push(line) },
    });
    logger.info("one");
    logger.warn("two");
    expect(written).toHaveLength(2);
    for (const line of written) expect(line).toMatch(/^\{.*\}\n$/);
  });

  it("leaves out pid and hostname", () => {
    const destination = collectingDestination();
    createLogger({ level: "info", destination }).info("hello");
    expect(destination.lines[0]).not.toHaveProperty("pid");
    expect(destination.lines[0]).not.toHaveProperty("hostname");
  });

  it.each<[LevelWithSilent, string[]]>([
    ["warn", ["warn", "error"]],
    ["debug", ["debug", "info", "warn", "error"]],
    ["silent", []],
  ])("at level %s writes only %j of debug, info, warn and error", (level, written) => {
    const destination = collectingDestination();
    const logger = createLogger({ level, destination });
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(destination.lines.map((line) => line.level)).toEqual(written);
  });

  it("keeps the service field on child loggers", () => {
    const destination = collectingDestination();
    createLogger({ level: "info", destination }).child({ component: "sweeper" }).info("swept");
    expect(destination.lines[0]).toMatchObject({
      service: "inference-cache-index",
      component: "sweeper",
      msg: "swept",
    });
  });
});
