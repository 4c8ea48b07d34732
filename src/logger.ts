import { type DestinationStream, type LevelWithSilent, type Logger, pino } from "pino";

/** The `service` field on every log line. */
export const SERVICE_NAME = "inference-cache-index";

export interface LoggerOptions {
  /** The minimum level written; `silent` writes nothing. */
  readonly level: LevelWithSilent;
  /**
   * Where JSON lines go, one per call.
   * @default stdout, written synchronously so nothing is lost when the process exits
   */
  readonly destination?: DestinationStream;
}

/**
 * Creates the process logger: one JSON object per line, with `level` as its name (`"info"`, not
 * `30`), `time` in epoch milliseconds, `msg`, and `service` on every line. `pid` and `hostname` are
 * left out: whatever collects the lines (container runtime, orchestrator) already labels them.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: SERVICE_NAME },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
