import type { Clock } from "./core/clock.js";
import { createLogThrottle, type LogThrottle } from "./kv-stream/log-throttle.js";

/** Options for {@link createUnexpectedErrorLog}. */
export interface UnexpectedErrorLogOptions {
  readonly logger: { error(fields: Record<string, unknown>, message: string): void };
  readonly clock: Clock;
  /** The least time between two lines for one method, in ms. */
  readonly intervalMs: number;
  /** Called for every error, logged or held back (a metric's counter, say). */
  readonly count?: (method: string) => void;
}

/**
 * Logs errors that escaped a call's handler (bugs), at most one line per method per interval, each
 * saying how many were held back. A request that trips a bug may be sent again and again; a stack
 * written for every call, synchronously, would stall the event loop behind a slow log pipe and hold
 * up every lookup. Methods are the servers' own names for what they serve, so the throttles kept
 * are bounded.
 */
export function createUnexpectedErrorLog(
  options: UnexpectedErrorLogOptions,
): (error: unknown, method: string) => void {
  const { logger, clock, intervalMs, count } = options;
  const throttles = new Map<string, LogThrottle>();
  return (error, method) => {
    count?.(method);
    let throttle = throttles.get(method);
    if (throttle === undefined) {
      throttle = createLogThrottle({ clock, intervalMs });
      throttles.set(method, throttle);
    }
    const suppressed = throttle.admit();
    if (suppressed === undefined) return;
    logger.error({ err: error, method, suppressed }, "unexpected error while serving a call");
  };
}
