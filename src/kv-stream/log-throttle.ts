import type { Clock } from "../core/clock.js";

/** Options for {@link createLogThrottle}. */
export interface LogThrottleOptions {
  /** Where time is read, in ms. */
  readonly clock: Clock;
  /** The least time between two admitted lines, in ms. */
  readonly intervalMs: number;
}

/**
 * Bounds how often one kind of warning is logged: at most one line per interval, which says how
 * many were held back since the line before.
 */
export interface LogThrottle {
  /**
   * Whether to log now: the number of occurrences suppressed since the last admitted one (0 or
   * more), or undefined to suppress this one (it is counted). O(1).
   */
  admit(): number | undefined;
}

/** Creates a {@link LogThrottle}; the first occurrence is always admitted. */
export function createLogThrottle(options: LogThrottleOptions): LogThrottle {
  const { clock, intervalMs } = options;
  let lastAdmittedAt: number | undefined;
  let suppressed = 0;
  return {
    admit() {
      const now = clock.now();
      if (lastAdmittedAt !== undefined && now - lastAdmittedAt < intervalMs) {
        suppressed++;
        return undefined;
      }
      lastAdmittedAt = now;
      const held = suppressed;
      suppressed = 0;
      return held;
    },
  };
}
