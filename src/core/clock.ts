/**
 * A source of time in milliseconds. The index only compares times it read from the same clock, so
 * the clock should be monotonic: in production a `performance.now()`-based clock, in tests a
 * manual clock advanced by hand.
 */
export interface Clock {
  now(): number;
}
