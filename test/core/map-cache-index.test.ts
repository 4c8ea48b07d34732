import { describeCacheIndexContract } from "./cache-index-contract.js";
import { createMapCacheIndex } from "./map-cache-index.js";

describeCacheIndexContract("createMapCacheIndex()", (options) => createMapCacheIndex(options));
