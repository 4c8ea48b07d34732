import type { BlockHash } from "./kv-event-types.js";

const HEX_DIGITS = "0123456789abcdef";

/**
 * A block hash as lower-case hex, two digits per byte: 16 digits for an integer hash (SGLang's
 * negative ones as their two's complement, -1 is "ffffffffffffffff"), 64 for a 32-byte digest.
 * For logs, tests and fixtures; the index keys hashes by their bytes.
 */
export function blockHashHex(hash: BlockHash): string {
  let hex = "";
  for (let i = 0; i < hash.length; i++) {
    const byte = hash[i] as number;
    hex += HEX_DIGITS.charAt(byte >> 4) + HEX_DIGITS.charAt(byte & 0x0f);
  }
  return hex;
}
