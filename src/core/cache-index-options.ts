import type { Clock } from "./clock.js";
import { STORAGE_TIERS, type StorageTier } from "./types.js";

/** Options every {@link CacheIndex} engine takes. */
export interface CacheIndexOptions {
  /** Where the index reads time. Should be monotonic. */
  clock: Clock;
  /**
   * How long a confirmed entry stays live, in ms. An entry is live while its age is <= ttlMs.
   * Non-positive or non-finite values, and values above {@link MAX_TTL_MS}, fall back to the default
   * with a warning.
   * @default 120_000
   */
  ttlMs?: number;
  /**
   * Most holder entries ((prefix, replica) pairs) the index keeps, over every scope.
   * @default 1_000_000
   */
  maxEntries?: number;
  /**
   * Most replicas the index knows, over every scope, holding entries or not (each costs up to about
   * 2 KB with its names). A write that would add one more is refused (`resource-exhausted`) and
   * changes nothing; replicas it knows still write. Replicas leave as today: silent past the TTL
   * and holding nothing, swept.
   * @default 50_000
   */
  maxReplicas?: number;
  /**
   * Most blocks of a lookup chain evaluated; longer chains are evaluated on their head. At most
   * {@link MAX_CHAIN_LENGTH}; a larger value is cut to it, with a warning.
   * @default 8192
   */
  maxChainLength?: number;
  /**
   * Hints returned when a lookup asks for 0; clamped to `maxHintsLimit`.
   * @default 4
   */
  defaultMaxHints?: number;
  /**
   * Most hints a lookup may ask for; a larger `max_hints` is clamped to it, so one request cannot
   * make ranking or the response as large as the fleet.
   * @default 64
   */
  maxHintsLimit?: number;
  /**
   * How much a match counts per storage tier, each in (0, 1]: a hint's score is its tokens x
   * freshness x the weight of the slowest tier in its run. Tiers not given keep their default; a
   * value out of range falls back to the default with a warning.
   * @default { gpu: 1, cpu: 0.8, disk: 0.5, other: 0.5 }
   */
  tierWeights?: Partial<Record<StorageTier, number>>;
}

/** {@link CacheIndexOptions} with every default applied. */
export type ResolvedCacheIndexOptions = Required<Omit<CacheIndexOptions, "tierWeights">> & {
  readonly tierWeights: Readonly<Record<StorageTier, number>>;
};

export const DEFAULT_TTL_MS = 120_000;
export const DEFAULT_MAX_ENTRIES = 1_000_000;
export const DEFAULT_MAX_REPLICAS = 50_000;
export const DEFAULT_MAX_CHAIN_LENGTH = 8192;
/**
 * The longest `maxChainLength`: a lookup's scratch arrays are sized to it up front (24 bytes per
 * block), and 2^20 blocks is 16M tokens at 16 tokens a block, past any context window.
 */
export const MAX_CHAIN_LENGTH = 1_048_576;
export const DEFAULT_MAX_HINTS = 4;
export const DEFAULT_MAX_HINTS_LIMIT = 64;
/** The longest TTL: one day. Engines keep ticks of 28 bits (see the compact engine's rebase). */
export const MAX_TTL_MS = 86_400_000;
export const DEFAULT_TIER_WEIGHTS: Readonly<Record<StorageTier, number>> = {
  gpu: 1,
  cpu: 0.8,
  disk: 0.5,
  other: 0.5,
};

/**
 * Applies defaults and repairs values that cannot work. Engines call it on their options too, so a
 * caller that wants the warnings calls it first and passes the resolved options on. A bad TTL must never crash the sidecar
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
  let ttlMs = positive("ttlMs", options.ttlMs, DEFAULT_TTL_MS, false);
  if (ttlMs > MAX_TTL_MS) {
    warnings.push(
      `ttlMs must be at most ${MAX_TTL_MS} (one day), got ${ttlMs}; using ${DEFAULT_TTL_MS}`,
    );
    ttlMs = DEFAULT_TTL_MS;
  }
  let maxChainLength = positive(
    "maxChainLength",
    options.maxChainLength,
    DEFAULT_MAX_CHAIN_LENGTH,
    true,
  );
  if (maxChainLength > MAX_CHAIN_LENGTH) {
    warnings.push(
      `maxChainLength must be at most ${MAX_CHAIN_LENGTH}, got ${maxChainLength}; using ${MAX_CHAIN_LENGTH}`,
    );
    maxChainLength = MAX_CHAIN_LENGTH;
  }
  const tierWeights = { ...DEFAULT_TIER_WEIGHTS };
  for (const tier of STORAGE_TIERS) {
    const weight = options.tierWeights?.[tier];
    if (weight === undefined) continue;
    if (Number.isFinite(weight) && weight > 0 && weight <= 1) tierWeights[tier] = weight;
    else {
      warnings.push(
        `tierWeights.${tier} must be in (0, 1], got ${weight}; using ${DEFAULT_TIER_WEIGHTS[tier]}`,
      );
    }
  }
  const maxHintsLimit = positive(
    "maxHintsLimit",
    options.maxHintsLimit,
    DEFAULT_MAX_HINTS_LIMIT,
    true,
  );
  return {
    options: {
      clock: options.clock,
      ttlMs,
      maxEntries: positive("maxEntries", options.maxEntries, DEFAULT_MAX_ENTRIES, true),
      maxReplicas: positive("maxReplicas", options.maxReplicas, DEFAULT_MAX_REPLICAS, true),
      maxChainLength,
      // The limit bounds every answer, the default's too.
      defaultMaxHints: Math.min(
        positive("defaultMaxHints", options.defaultMaxHints, DEFAULT_MAX_HINTS, true),
        maxHintsLimit,
      ),
      maxHintsLimit,
      tierWeights,
    },
    warnings,
  };
}
