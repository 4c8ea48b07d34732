import { STORAGE_TIERS, type StorageTier } from "./types.js";

/** A holder's tiers as a bit set: bit i is `STORAGE_TIERS[i]`. */
export type TierMask = number;

/** Every tier's bit set. */
export const ALL_TIERS: TierMask = (1 << STORAGE_TIERS.length) - 1;
/** How many tiers there are: bits of a TierMask. */
export const TIER_COUNT = STORAGE_TIERS.length;

/** The bit of one tier. */
export function tierBit(tier: StorageTier): TierMask {
  return 1 << STORAGE_TIERS.indexOf(tier);
}

/**
 * What a set of tiers is worth in ranking, precomputed for every set: a block held on several tiers
 * counts at its best one (highest weight; the faster tier on a tie).
 */
export class TierWeights {
  /** Per mask: the weight of its best tier; 0 for the empty mask. */
  readonly #weight: Float64Array;
  /** Per mask: its best tier. */
  readonly #tier: StorageTier[];
  /** Per mask: its best tier's place in STORAGE_TIERS (see `weaker`). */
  readonly #place: Uint8Array;
  /** The highest weight of any tier: no score exceeds tokens x freshness x this. */
  readonly max: number;

  constructor(weights: Readonly<Record<StorageTier, number>>) {
    const masks = ALL_TIERS + 1;
    this.#weight = new Float64Array(masks);
    this.#tier = new Array<StorageTier>(masks).fill("gpu");
    this.#place = new Uint8Array(masks);
    for (let mask = 1; mask < masks; mask++) {
      let best = -1;
      STORAGE_TIERS.forEach((tier, i) => {
        if ((mask & (1 << i)) !== 0 && weights[tier] > best) {
          best = weights[tier];
          this.#tier[mask] = tier;
          this.#place[mask] = i;
        }
      });
      this.#weight[mask] = best;
    }
    this.max = Math.max(...STORAGE_TIERS.map((tier) => weights[tier]));
  }

  /** The weight `mask` counts at. */
  weightOf(mask: TierMask): number {
    return this.#weight[mask] as number;
  }

  /** The tier `mask` counts at. */
  tierOf(mask: TierMask): StorageTier {
    return this.#tier[mask] as StorageTier;
  }

  /**
   * Whether `mask` counts below `than`, which weighs `thanWeight` (`than`'s weight, or +Infinity
   * for none yet): a lower weight, or the same weight on a tier later in STORAGE_TIERS ("other"
   * after "disk"). A run counts at its weakest block so measured, whatever order it is read in.
   */
  weaker(mask: TierMask, than: TierMask, thanWeight: number): boolean {
    const weight = this.#weight[mask] as number;
    if (weight !== thanWeight) return weight < thanWeight;
    return mask !== than && (this.#place[mask] as number) > (this.#place[than] as number);
  }
}
