import type { PrefixHash } from "./types.js";

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, "0"),
);

/**
 * A prefix hash as a Map key: lower-case hex. Keys are only compared within one scheme table, so
 * hashes of different lengths never need telling apart beyond their text.
 */
export function prefixKey(hash: PrefixHash): string {
  let key = "";
  for (let i = 0; i < hash.length; i++) key += HEX[hash[i] as number];
  return key;
}
