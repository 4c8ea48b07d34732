import type { Clock } from "../../src/core/clock.js";

/** A clock that moves only when a test says so. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#now += ms;
  }
}
