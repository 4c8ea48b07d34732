import type { Clock } from "../src/core/clock.js";

/**
 * A clock that reads the replayed trace's time, not the machine's: a simulation sets it to each
 * request's timestamp, so what the index does with time (TTL, freshness) is the same on every run.
 */
export class TraceClock implements Clock {
  #now: number;

  /** Starts at `startMs` (trace time, ms). @default 0 */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Moves to `ms`. Time never goes back: an earlier `ms` leaves the clock where it is. */
  advanceTo(ms: number): void {
    if (ms > this.#now) this.#now = ms;
  }
}
