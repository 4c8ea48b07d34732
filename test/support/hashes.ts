/** An 8-byte big-endian prefix hash, the way vLLM's 64-bit block hashes travel. */
export function hashOf(n: number | bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n));
  return bytes;
}

/** A chain of `length` block hashes starting at `first`, head first. */
export function chainOf(first: number, length: number): Uint8Array[] {
  return Array.from({ length }, (_, i) => hashOf(first + i));
}
