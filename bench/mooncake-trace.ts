import { readFileSync } from "node:fs";

/** One request of the Mooncake trace. */
export interface TraceRequest {
  readonly timestampMs: number;
  readonly inputLength: number;
  readonly outputLength: number;
  /** Prefix block ids, head first; 512 tokens per block. */
  readonly hashIds: readonly number[];
}

/** Tokens per block in the Mooncake trace. */
export const MOONCAKE_BLOCK_TOKENS = 512;

/** Reads the JSON-lines trace. */
export function loadTrace(path: string): TraceRequest[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const raw = JSON.parse(line) as {
        timestamp: number;
        input_length: number;
        output_length: number;
        hash_ids: number[];
      };
      return {
        timestampMs: raw.timestamp,
        inputLength: raw.input_length,
        outputLength: raw.output_length,
        hashIds: raw.hash_ids,
      };
    });
}

/** A block id as the 8-byte big-endian prefix hash an adapter would send. */
export function blockHash(id: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(id));
  return bytes;
}
