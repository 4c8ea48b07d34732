import { DEFAULT_TIER_WEIGHTS } from "../core/cache-index-options.js";
import { STORAGE_TIERS, type StorageTier } from "../core/types.js";

/**
 * The kinds of value a setting can take: how each reads from a raw string (a flag or environment
 * variable) and how it prints in the usage text.
 */
export interface ValueKind<T> {
  /** Completes "expected ..." in an error message, e.g. `a positive integer`. */
  readonly expected: string;
  /** The value `raw` stands for, or `undefined` if it is not one. */
  parse(raw: string): T | undefined;
  format(value: T): string;
}

/** A listening address. `host` is bare: an IPv6 host is stored without its brackets (`::1`). */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/** Levels a logger accepts, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Prints an address as `host:port`, bracketing an IPv6 host (`[::1]:50051`). */
export function formatAddress(address: Address): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

// `host:port` or `[ipv6]:port`. An unbracketed host may not contain a colon, so `::1:50051` is
// rejected rather than guessed at.
const ADDRESS = /^(?:\[([^[\]\s]+)\]|([^[\]\s:]+)):([0-9]{1,5})$/;

export const address: ValueKind<Address> = {
  expected: "host:port with a port from 0 to 65535, and an IPv6 host in brackets",
  parse(raw) {
    const match = ADDRESS.exec(raw);
    if (match === null) return undefined;
    const port = Number(match[3]);
    if (port > 65535) return undefined;
    return { host: match[1] ?? match[2] ?? "", port };
  },
  format: formatAddress,
};

// Plain decimal notation only: `Number()` alone would also accept "", " ", "0x10" and "Infinity".
const DECIMAL = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

function parseDecimal(raw: string): number | undefined {
  if (!DECIMAL.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

/** Any finite number, zero and negatives included: whoever uses it decides what those mean. */
export const seconds: ValueKind<number> = {
  expected: "a number of seconds",
  parse: parseDecimal,
  format: String,
};

/**
 * A number of seconds at most `max`; zero and negatives are left to whoever uses it, as for
 * {@link seconds}.
 */
export function secondsAtMost(max: number): ValueKind<number> {
  return {
    expected: `a number of seconds, at most ${max}`,
    parse(raw) {
      const value = parseDecimal(raw);
      return value !== undefined && value <= max ? value : undefined;
    },
    format: String,
  };
}

/**
 * A number of seconds from 0 to `max`. The bound keeps a duration within what a Node timer can wait
 * (about 24.8 days); past that a timer fires at once.
 */
export function secondsUpTo(max: number): ValueKind<number> {
  return {
    expected: `a number of seconds from 0 to ${max}`,
    parse(raw) {
      const value = parseDecimal(raw);
      return value !== undefined && value >= 0 && value <= max ? value : undefined;
    },
    format: String,
  };
}

/** A kind for whole numbers from `min` up (to `max`, when given), written as plain digits. */
export function integerAtLeast(
  min: number,
  expected = `an integer of at least ${min}`,
  max = Number.MAX_SAFE_INTEGER,
) {
  const kind: ValueKind<number> = {
    expected,
    parse(raw) {
      if (!/^[0-9]+$/.test(raw)) return undefined;
      const value = Number(raw);
      return Number.isSafeInteger(value) && value >= min && value <= max ? value : undefined;
    },
    format: String,
  };
  return kind;
}

export const logLevel: ValueKind<LogLevel> = {
  expected: `one of ${LOG_LEVELS.join(", ")}`,
  parse(raw) {
    return LOG_LEVELS.find((level) => level === raw);
  },
  format: String,
};

/**
 * A number of seconds above 0 and at most `max`, for durations that cannot be zero (a timer's
 * period is derived from them).
 */
export function positiveSecondsUpTo(max: number): ValueKind<number> {
  return {
    expected: `a number of seconds above 0 and at most ${max}`,
    parse(raw) {
      const value = parseDecimal(raw);
      return value !== undefined && value > 0 && value <= max ? value : undefined;
    },
    format: String,
  };
}

/** A path to a file, read later by whoever uses it; unset (`undefined`) by default. */
export const filePath: ValueKind<string | undefined> = {
  expected: "a file path",
  parse(raw) {
    return raw === "" ? undefined : raw;
  },
  format(value) {
    return value ?? "none";
  },
};

/** How much a match counts per storage tier, each in (0, 1]. */
export type TierWeights = Readonly<Record<StorageTier, number>>;

/**
 * Comma-separated `tier=weight` pairs over {@link DEFAULT_TIER_WEIGHTS}: `cpu=0.9` changes only the
 * CPU tier. Tiers are `gpu`, `cpu`, `disk` and `other`, each at most once; weights in (0, 1].
 */
export const tierWeights: ValueKind<TierWeights> = {
  expected: `comma-separated tier=weight pairs, tiers ${STORAGE_TIERS.join(", ")}, weights in (0, 1], e.g. gpu=1,cpu=0.8`,
  parse(raw) {
    const weights: Record<StorageTier, number> = { ...DEFAULT_TIER_WEIGHTS };
    const seen = new Set<string>();
    for (const pair of raw.split(",")) {
      const [tier, value, ...rest] = pair.split("=");
      const known = STORAGE_TIERS.find((candidate) => candidate === tier?.trim());
      const weight = parseDecimal(value?.trim() ?? "");
      if (known === undefined || seen.has(known) || rest.length > 0) return undefined;
      if (weight === undefined || weight <= 0 || weight > 1) return undefined;
      seen.add(known);
      weights[known] = weight;
    }
    return weights;
  },
  format(value) {
    return STORAGE_TIERS.map((tier) => `${tier}=${value[tier]}`).join(",");
  },
};
