import { createMapCacheIndex } from "../../src/core/map-cache-index.js";
import { describeCacheIndexContract } from "./cache-index-contract.js";

describeCacheIndexContract("createMapCacheIndex()", (options) => createMapCacheIndex(options));
