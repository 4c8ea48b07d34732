import { blockHashHex } from "../../src/kv-events/block-hash-hex.js";
import type { KvEvent } from "../../src/kv-events/kv-event-types.js";

/**
 * A decoded event as tests state it, in the fixtures' expected.json form: snake_case field names,
 * hashes in hex, null for an absent parent or LoRA.
 */
export function eventForm(event: KvEvent): unknown {
  switch (event.type) {
    case "BlockStored":
      return {
        type: event.type,
        block_hashes: event.blockHashes.map(blockHashHex),
        parent_block_hash:
          event.parentBlockHash === undefined ? null : blockHashHex(event.parentBlockHash),
        token_count: event.tokenCount,
        block_size: event.blockSize,
        medium: event.medium,
        lora_name: event.loraName ?? null,
      };
    case "BlockRemoved":
      return {
        type: event.type,
        block_hashes: event.blockHashes.map(blockHashHex),
        medium: event.medium,
      };
    case "AllBlocksCleared":
      return { type: event.type };
  }
}
