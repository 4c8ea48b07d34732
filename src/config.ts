import {
  type Address,
  address,
  filePath,
  integerAtLeast,
  LOG_LEVELS,
  type LogLevel,
  logLevel,
  positiveSecondsUpTo,
  seconds,
  secondsAtMost,
  secondsUpTo,
  type TierWeights,
  tierWeights,
  type ValueKind,
} from "./config/value-kinds.js";
import { MAX_BLOCKS } from "./core/block-store.js";
import {
  DEFAULT_MAX_CHAIN_LENGTH,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_HINTS,
  DEFAULT_MAX_HINTS_LIMIT,
  DEFAULT_MAX_REPLICAS,
  DEFAULT_TIER_WEIGHTS,
  DEFAULT_TTL_MS,
  MAX_CHAIN_LENGTH,
  MAX_TTL_MS,
} from "./core/cache-index-options.js";
import { DEFAULT_LIVENESS_WINDOW_MS } from "./kv-stream/kv-event-stream.js";
import { DEFAULT_SWEEP_INTERVAL_MS } from "./sweeper.js";
import { DEFAULT_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES } from "./transport/public-error.js";

export {
  type Address,
  formatAddress,
  LOG_LEVELS,
  type LogLevel,
  type TierWeights,
} from "./config/value-kinds.js";

/** The sidecar's settings, fully resolved: every field has a value. */
export interface Config {
  /** Where the gRPC server listens. Port 0 picks a free port. @default 127.0.0.1:50051 */
  readonly grpcAddress: Address;
  /** Where the HTTP server (Connect, gRPC-Web, health, metrics) listens. Port 0 picks a free port. @default 127.0.0.1:8080 */
  readonly httpAddress: Address;
  /**
   * How long a reported prefix stays live without being confirmed. Zero or a negative value falls
   * back to the default, with a warning naming the setting. @default 120
   */
  readonly ttlSeconds: number;
  /** How often expired entries are swept. Zero or less falls back like `ttlSeconds`. @default 5 */
  readonly sweepIntervalSeconds: number;
  /** The most holder entries the index keeps before evicting the least recently confirmed. @default 1000000 */
  readonly maxEntries: number;
  /** The most replicas the index knows; a write adding one more is refused. @default 50000 */
  readonly maxReplicas: number;
  /** The most blocks of a lookup chain evaluated; longer chains are evaluated on their head. @default 8192 */
  readonly maxChainLength: number;
  /** Hints returned when a lookup asks for `max_hints` 0. @default 4 */
  readonly defaultMaxHints: number;
  /** The largest request or response message either server accepts, in bytes (at least 1024). @default 4194304 */
  readonly maxMessageBytes: number;
  /**
   * How long shutdown keeps serving after readiness and health turn down, so that load balancers and
   * gateways stop sending calls before the listeners close. At most 3600. @default 1
   */
  readonly shutdownDelaySeconds: number;
  /** How long shutdown then waits for in-flight calls before closing them. At most 3600. @default 10 */
  readonly shutdownGraceSeconds: number;
  /** The minimum level logged. @default "info" */
  readonly logLevel: LogLevel;
  /**
   * The engines' KV-event sources file (JSON, see `parseKvEventSources`), re-read on SIGHUP;
   * undefined reads no engine streams. @default undefined
   */
  readonly kvEventsConfig: string | undefined;
  /**
   * How long an engine stream's replicas stay valid past the stream's last sign of life (a batch
   * in order, or a keep-alive while connected); past it their entries age by the TTL. Above 0, at
   * most 86400. @default 30
   */
  readonly livenessWindowSeconds: number;
  /** How much a match counts per storage tier in ranking, each in (0, 1]. @default gpu=1,cpu=0.8,disk=0.5,other=0.5 */
  readonly tierWeights: TierWeights;
}

/** The value of every setting that neither a flag nor an environment variable sets. */
export const DEFAULT_CONFIG: Config = Object.freeze({
  grpcAddress: Object.freeze({ host: "127.0.0.1", port: 50051 }),
  httpAddress: Object.freeze({ host: "127.0.0.1", port: 8080 }),
  ttlSeconds: DEFAULT_TTL_MS / 1000,
  sweepIntervalSeconds: DEFAULT_SWEEP_INTERVAL_MS / 1000,
  maxEntries: DEFAULT_MAX_ENTRIES,
  maxReplicas: DEFAULT_MAX_REPLICAS,
  maxChainLength: DEFAULT_MAX_CHAIN_LENGTH,
  defaultMaxHints: DEFAULT_MAX_HINTS,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  shutdownDelaySeconds: 1,
  shutdownGraceSeconds: 10,
  logLevel: "info",
  kvEventsConfig: undefined,
  livenessWindowSeconds: DEFAULT_LIVENESS_WINDOW_MS / 1000,
  tierWeights: DEFAULT_TIER_WEIGHTS,
});

/** How one setting is spelled on the command line and in the environment, and how its value reads. */
interface Setting<K extends keyof Config> {
  readonly flag: `--${string}`;
  readonly env: `${typeof ENV_PREFIX}${string}`;
  /** Stands for the value in the usage text, e.g. `<seconds>`. */
  readonly placeholder: string;
  readonly description: string;
  readonly kind: ValueKind<Config[K]>;
  /**
   * Zero or a negative value is not an error but falls back to the default with a warning that
   * names the setting as the user wrote it (a bad TTL must not stop the sidecar from starting).
   */
  readonly defaultUnlessPositive?: true;
}

/** The largest --max-replicas taken: 2^24, far past any fleet (and about 34 GB of replicas). */
const MAX_REPLICAS_SETTING = 16_777_216;
const ENV_PREFIX = "INFERENCECACHE_";
const PROGRAM = "inference-cache-index";

/**
 * The one table that drives parsing and the usage text, so the two cannot drift. Keyed by `Config`
 * field, so adding a field without a setting does not compile.
 */
const SETTINGS: { readonly [K in keyof Config]: Setting<K> } = {
  grpcAddress: {
    flag: "--grpc-address",
    env: "INFERENCECACHE_GRPC_ADDRESS",
    placeholder: "<host:port>",
    description: "Where the gRPC server listens. IPv6 as [::1]:50051; port 0 picks a free port.",
    kind: address,
  },
  httpAddress: {
    flag: "--http-address",
    env: "INFERENCECACHE_HTTP_ADDRESS",
    placeholder: "<host:port>",
    description:
      "Where the HTTP server (Connect, gRPC-Web, /metrics, /healthz, /readyz) listens. Same form as --grpc-address.",
    kind: address,
  },
  ttlSeconds: {
    flag: "--ttl-seconds",
    env: "INFERENCECACHE_TTL_SECONDS",
    placeholder: "<seconds>",
    description:
      "How long a reported prefix stays live unless confirmed again, at most 86400 (one day). Zero or less: the default, with a warning.",
    kind: secondsAtMost(MAX_TTL_MS / 1000),
    defaultUnlessPositive: true,
  },
  sweepIntervalSeconds: {
    flag: "--sweep-interval-seconds",
    env: "INFERENCECACHE_SWEEP_INTERVAL_SECONDS",
    placeholder: "<seconds>",
    description: "How often expired entries are swept. Zero or less: the default, with a warning.",
    kind: seconds,
    defaultUnlessPositive: true,
  },
  maxEntries: {
    flag: "--max-entries",
    env: "INFERENCECACHE_MAX_ENTRIES",
    placeholder: "<n>",
    description: "The most holder entries kept; past it the least recently confirmed are evicted.",
    kind: integerAtLeast(1, `an integer from 1 to ${MAX_BLOCKS}`, MAX_BLOCKS),
  },
  maxReplicas: {
    flag: "--max-replicas",
    env: "INFERENCECACHE_MAX_REPLICAS",
    placeholder: "<n>",
    description:
      "The most replicas known, over every tenant and model; a write that would add one more gets RESOURCE_EXHAUSTED.",
    kind: integerAtLeast(1, `an integer from 1 to ${MAX_REPLICAS_SETTING}`, MAX_REPLICAS_SETTING),
  },
  maxChainLength: {
    flag: "--max-chain-length",
    env: "INFERENCECACHE_MAX_CHAIN_LENGTH",
    placeholder: "<n>",
    description:
      "The most blocks of a lookup chain evaluated; longer chains are cut to their head. At most 1048576.",
    kind: integerAtLeast(1, `an integer from 1 to ${MAX_CHAIN_LENGTH}`, MAX_CHAIN_LENGTH),
  },
  defaultMaxHints: {
    flag: "--default-max-hints",
    env: "INFERENCECACHE_DEFAULT_MAX_HINTS",
    placeholder: "<n>",
    description: `Hints returned when a lookup's max_hints is 0; at most ${DEFAULT_MAX_HINTS_LIMIT}, the limit on any answer.`,
    kind: integerAtLeast(
      1,
      `an integer from 1 to ${DEFAULT_MAX_HINTS_LIMIT}`,
      DEFAULT_MAX_HINTS_LIMIT,
    ),
  },
  maxMessageBytes: {
    flag: "--max-message-bytes",
    env: "INFERENCECACHE_MAX_MESSAGE_BYTES",
    placeholder: "<bytes>",
    description: `The largest message either server accepts, from 1024 to ${MAX_MESSAGE_BYTES}.`,
    kind: integerAtLeast(1024, `an integer from 1024 to ${MAX_MESSAGE_BYTES}`, MAX_MESSAGE_BYTES),
  },
  shutdownDelaySeconds: {
    flag: "--shutdown-delay-seconds",
    env: "INFERENCECACHE_SHUTDOWN_DELAY_SECONDS",
    placeholder: "<seconds>",
    description:
      "On SIGTERM/SIGINT, how long to keep serving after readiness and health turn down.",
    kind: secondsUpTo(3600),
  },
  shutdownGraceSeconds: {
    flag: "--shutdown-grace-seconds",
    env: "INFERENCECACHE_SHUTDOWN_GRACE_SECONDS",
    placeholder: "<seconds>",
    description: "Then, how long to wait for in-flight calls before cancelling them.",
    kind: secondsUpTo(3600),
  },
  logLevel: {
    flag: "--log-level",
    env: "INFERENCECACHE_LOG_LEVEL",
    placeholder: "<level>",
    description: `The minimum level logged: ${LOG_LEVELS.join(", ")}.`,
    kind: logLevel,
  },
  kvEventsConfig: {
    flag: "--kv-events-config",
    env: "INFERENCECACHE_KV_EVENTS_CONFIG",
    placeholder: "<file>",
    description:
      "A JSON file of engines whose KV-event streams to read (ZMQ); re-read on SIGHUP. None: read no engine.",
    kind: filePath,
  },
  livenessWindowSeconds: {
    flag: "--liveness-window-seconds",
    env: "INFERENCECACHE_LIVENESS_WINDOW_SECONDS",
    placeholder: "<seconds>",
    description:
      "How long an engine stream's entries stay valid after the stream is lost (or while it recovers a gap), before the TTL applies again; while it is connected they are kept alive, batches or not.",
    kind: positiveSecondsUpTo(86400),
  },
  tierWeights: {
    flag: "--tier-weights",
    env: "INFERENCECACHE_TIER_WEIGHTS",
    placeholder: "<tier=weight,...>",
    description:
      "How much a match counts per storage tier (gpu, cpu, disk, other), each in (0, 1]; tiers left out keep their default.",
    kind: tierWeights,
  },
};

const KEYS = Object.keys(SETTINGS) as (keyof Config)[];
const KEY_BY_FLAG = new Map<string, keyof Config>(KEYS.map((key) => [SETTINGS[key].flag, key]));
const KNOWN_ENV = new Set<string>(KEYS.map((key) => SETTINGS[key].env));
const HELP_FLAGS = new Set(["--help", "-h"]);

/** What {@link parseConfig} found: a config to run with, a usage text to print, or what to fix. */
export type ParseConfigResult =
  | { readonly config: Config; readonly warnings: readonly string[] }
  | { readonly help: string }
  | { readonly error: string };

/**
 * Resolves the sidecar's settings from command-line flags (`--name value` or `--name=value`), then
 * `INFERENCECACHE_*` environment variables, then {@link DEFAULT_CONFIG}. Pure: reads only its
 * arguments, never exits.
 *
 * - `argv` is the arguments after the script (`process.argv.slice(2)`). `--help` or `-h` anywhere
 *   wins over everything else. A repeated flag takes its last value.
 * - An empty environment variable counts as unset. Only the value that wins is validated, so a flag
 *   can override a malformed environment variable.
 * - Unknown flags, positional arguments, a flag without a value and invalid values are errors that
 *   name the setting as the user wrote it; unknown `INFERENCECACHE_*` variables are only warnings.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParseConfigResult {
  if (argv.some((arg) => HELP_FLAGS.has(arg))) return { help: helpText() };

  const flags = readFlags(argv);
  if ("error" in flags) return flags;

  const config: { -readonly [K in keyof Config]: Config[K] } = { ...DEFAULT_CONFIG };
  const warnings: string[] = [];
  for (const key of KEYS) {
    const { flag, env: envName } = SETTINGS[key];
    const flagValue = flags.values.get(key);
    const envValue = env[envName];
    const source =
      flagValue !== undefined
        ? { name: flag, raw: flagValue }
        : envValue !== undefined && envValue !== ""
          ? { name: envName, raw: envValue }
          : undefined;
    if (source === undefined) continue;
    const error = assign(config, key, SETTINGS[key], source.name, source.raw);
    if (error !== undefined) return { error };
    const value = config[key];
    if (SETTINGS[key].defaultUnlessPositive && typeof value === "number" && value <= 0) {
      const fallback = String(DEFAULT_CONFIG[key]);
      warnings.push(
        `${source.name} must be positive, got ${source.raw}; using the default ${fallback}`,
      );
      Object.assign(config, { [key]: DEFAULT_CONFIG[key] });
    }
  }

  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !KNOWN_ENV.has(name)) {
      warnings.push(`unknown environment variable ${name} is ignored; see --help`);
    }
  }
  return { config, warnings };
}

/** Parses one raw value into `config[key]`; returns the message to show if it is invalid. */
function assign<K extends keyof Config>(
  config: { -readonly [P in keyof Config]: Config[P] },
  key: K,
  setting: Setting<K>,
  name: string,
  raw: string,
): string | undefined {
  const value = setting.kind.parse(raw);
  if (value === undefined) {
    return `invalid value for ${name}: ${JSON.stringify(raw)} (expected ${setting.kind.expected})`;
  }
  config[key] = value;
  return undefined;
}

/** Splits `argv` into raw flag values by setting, without validating the values. */
function readFlags(
  argv: readonly string[],
): { readonly values: ReadonlyMap<keyof Config, string> } | { readonly error: string } {
  const values = new Map<keyof Config, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) {
      return { error: `unexpected argument ${JSON.stringify(arg)}; see --help` };
    }
    const equals = arg.indexOf("=");
    const flag = equals === -1 ? arg : arg.slice(0, equals);
    const key = KEY_BY_FLAG.get(flag);
    if (key === undefined) return { error: `unknown flag ${flag}; see --help` };
    if (equals !== -1) {
      values.set(key, arg.slice(equals + 1));
      continue;
    }
    const next = argv[i + 1];
    // A following flag means this one has no value; a single dash does not, so `-5` reads as a value.
    if (next === undefined || next.startsWith("--")) {
      return { error: `missing value for ${flag}; see --help` };
    }
    values.set(key, next);
    i++;
  }
  return { values };
}

/** The usage text, generated from {@link SETTINGS}. */
function helpText(): string {
  const lines = [
    `Usage: ${PROGRAM} [options]`,
    "",
    "Every option can also be set by its environment variable; a flag overrides the variable,",
    "and an empty variable counts as unset.",
    "",
    "Options:",
  ];
  for (const key of KEYS) lines.push(...settingHelp(SETTINGS[key], DEFAULT_CONFIG[key]));
  lines.push("  -h, --help", "      Show this help and exit.");
  return `${lines.join("\n")}\n`;
}

function settingHelp<K extends keyof Config>(setting: Setting<K>, fallback: Config[K]): string[] {
  return [
    `  ${setting.flag} ${setting.placeholder}`,
    `      ${setting.description}`,
    `      env: ${setting.env}  default: ${setting.kind.format(fallback)}`,
  ];
}
