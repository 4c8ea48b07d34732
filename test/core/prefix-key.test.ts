import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prefixKey } from "./prefix-key.js";

describe("prefixKey()", () => {
  it("gives equal hashes equal keys and different hashes different keys", () => {
    const hash = fc.uint8Array({ minLength: 1, maxLength: 64 });
    fc.assert(
      fc.property(hash, hash, (a, b) => {
        const same = a.length === b.length && a.every((byte, i) => byte === b[i]);
        expect(prefixKey(a) === prefixKey(b)).toBe(same);
        expect(prefixKey(a)).toBe(prefixKey(Uint8Array.from(a)));
      }),
    );
  });

  it.each([
    [[0, 1], [1]],
    [
      [0, 0, 0, 0, 0, 0, 0, 1],
      [0, 0, 0, 0, 0, 1],
    ],
    [
      [1, 2, 3],
      [1, 2, 3, 0],
    ],
  ])("keeps %j and %j apart though their bytes overlap", (a, b) => {
    expect(prefixKey(Uint8Array.from(a))).not.toBe(prefixKey(Uint8Array.from(b)));
  });
});
