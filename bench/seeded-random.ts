/** A deterministic source of uniform numbers in [0, 1): the same seed gives the same sequence. */
export interface SeededRandom {
  next(): number;
  /** A uniform integer in [0, bound). */
  nextInt(bound: number): number;
}

/**
 * mulberry32: a 32-bit PRNG, small and fast, good enough to spread requests over workers (not for
 * anything cryptographic). Benchmarks and simulations seed it so every run sees the same choices.
 */
export function createSeededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return { next, nextInt: (bound) => Math.floor(next() * bound) };
}
