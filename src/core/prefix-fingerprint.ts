/**
 * Reduces a prefix hash to the 64 bits the compact index keys blocks by, as two unsigned 32-bit
 * halves written to `out[at]` (high) and `out[at + 1]` (low).
 *
 * An 8-byte hash, the form engines publish (vLLM's low 64 bits, SGLang's int64, the trace's ids), is
 * its own fingerprint: no two such hashes share one. Hashes of any other length are folded by two
 * independent 32-bit mixes of their bytes and length; two distinct ones then share a fingerprint with
 * probability about n^2 / 2^65 for n blocks in one scheme, and would be treated as one block. Hashes
 * are only ever compared within one (tenant, model, scheme), so no collision can cross scopes.
 */
export function prefixFingerprint(hash: Uint8Array, out: Uint32Array, at = 0): void {
  const length = hash.length;
  if (length === 8) {
    out[at] =
      (((hash[0] as number) << 24) |
        ((hash[1] as number) << 16) |
        ((hash[2] as number) << 8) |
        (hash[3] as number)) >>>
      0;
    out[at + 1] =
      (((hash[4] as number) << 24) |
        ((hash[5] as number) << 16) |
        ((hash[6] as number) << 8) |
        (hash[7] as number)) >>>
      0;
    return;
  }
  let high = 0x811c9dc5 ^ length;
  let low = 0x9747b28c ^ Math.imul(length, 0x01000193);
  for (let i = 0; i < length; i++) {
    const byte = hash[i] as number;
    high = Math.imul(high ^ byte, 0x01000193);
    low = Math.imul(low ^ byte, 0x5bd1e995);
    low ^= low >>> 15;
  }
  out[at] = mix32(high) >>> 0;
  out[at + 1] = mix32(low ^ 0x68e31da4) >>> 0;
}

/** MurmurHash3's finaliser: every input bit affects every output bit. */
export function mix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
