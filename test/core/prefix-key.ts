import type { PrefixHash } from "../../src/core/types.js";

/**
 * A prefix hash as a Map key: its length as the first UTF-16 code unit, then two bytes per code
 * unit (a trailing odd byte alone). The length prefix keeps keys of different lengths distinct.
 * Half as long as hex, and built in one call for the common 8-byte hash. Measured on the Mooncake
 * trace's chains when this was written, building and looking up these keys took about half the
 * time hex keys did (the rest of a Map look-up here is memory latency).
 */
export function prefixKey(hash: PrefixHash): string {
  const n = hash.length;
  if (n === 8) {
    return String.fromCharCode(
      8,
      ((hash[0] as number) << 8) | (hash[1] as number),
      ((hash[2] as number) << 8) | (hash[3] as number),
      ((hash[4] as number) << 8) | (hash[5] as number),
      ((hash[6] as number) << 8) | (hash[7] as number),
    );
  }
  let key = String.fromCharCode(n);
  let i = 0;
  for (; i + 1 < n; i += 2)
    key += String.fromCharCode(((hash[i] as number) << 8) | (hash[i + 1] as number));
  if (i < n) key += String.fromCharCode(hash[i] as number);
  return key;
}
