import type { CacheIndex } from "./cache-index.js";
import type { CacheIndexOptions } from "./cache-index-options.js";
import { createCompactCacheIndex } from "./compact-cache-index.js";

/** The index engine the sidecar runs. Everything outside `src/core/` creates its index here. */
export function createCacheIndex(options: CacheIndexOptions): CacheIndex {
  return createCompactCacheIndex(options);
}
