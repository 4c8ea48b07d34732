import type { Clock } from "./clock.js";

/** Options every {@link CacheIndex} engine takes. */
export interface CacheIndexOptions {
  /** Where the index reads time. Should be monotonic. */
  clock: Clock;
  /**
   * How long a confirmed entry stays live, in ms. An entry is live while its age is <= ttlMs.
   * Non-positive or non-finite values fall back to the default with a warning.
   * @default 120_000
   */
  ttlMs?: number;
  /**
   * Most holder entries ((prefix, replica) pairs) the index keeps, over every scope.
   * @default 1_000_000
   */
  maxEntries?: number;
  /**
   * Most blocks of a lookup chain evaluated; longer chains are evaluated on their head.
   * @default 8192
   */
  maxChainLength?: number;
  /**
   * Hints returned when a lookup asks for 0.
   * @default 4
   */
  defaultMaxHints?: number;
}

/** {@link CacheIndexOptions} with every default applied. */
export type ResolvedCacheIndexOptions = Required<CacheIndexOptions>;

export const DEFAULT_TTL_MS = 120_000;
export const DEFAULT_MAX_ENTRIES = 1_000_000;
export const DEFAULT_MAX_CHAIN_LENGTH = 8192;
export const DEFAULT_MAX_HINTS = 4;

/**
 * Applies defaults and repairs values that cannot work. A bad TTL must never crash the sidecar
 * or make every entry expire at once, so it falls back to the default; the caller logs `warnings`.
 */
export function resolveCacheIndexOptions(options: CacheIndexOptions): {
  options: ResolvedCacheIndexOptions;
  warnings: string[];
} {
  const warnings: string[] = [];
  const positive = (
    name: string,
    value: number | undefined,
    fallback: number,
    integer: boolean,
  ) => {
    if (value === undefined) return fallback;
    const ok = Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value));
    if (ok) return value;
    warnings.push(
      `${name} must be a positive ${integer ? "integer" : "number"}, got ${value}; using ${fallback}`,
    );
    return fallback;
  };
  return {
    options: {
      clock: options.clock,
      ttlMs: positive("ttlMs", options.ttlMs, DEFAULT_TTL_MS, false),
      maxEntries: positive("maxEntries", options.maxEntries, DEFAULT_MAX_ENTRIES, true),
      maxChainLength: positive(
        "maxChainLength",
        options.maxChainLength,
        DEFAULT_MAX_CHAIN_LENGTH,
        true,
      ),
      defaultMaxHints: positive(
        "defaultMaxHints",
        options.defaultMaxHints,
        DEFAULT_MAX_HINTS,
        true,
      ),
    },
    warnings,
  };
}
