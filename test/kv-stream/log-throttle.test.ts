import { describe, expect, it } from "vitest";
import { createLogThrottle } from "../../src/kv-stream/log-throttle.js";
import { ManualClock } from "../support/manual-clock.js";

describe("createLogThrottle()", () => {
  it("admits the first occurrence, then one per interval with the count held back", () => {
    const clock = new ManualClock();
    const throttle = createLogThrottle({ clock, intervalMs: 1_000 });
    expect(throttle.admit()).toBe(0);
    expect(throttle.admit()).toBeUndefined();
    clock.advance(999);
    expect(throttle.admit()).toBeUndefined();
    clock.advance(1);
    expect(throttle.admit()).toBe(2);
    clock.advance(5_000);
    expect(throttle.admit()).toBe(0);
  });
});
