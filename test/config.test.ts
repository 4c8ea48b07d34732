import { describe, expect, it } from "vitest";
import {
  type Config,
  DEFAULT_CONFIG,
  formatAddress,
  type ParseConfigResult,
  parseConfig,
} from "../src/config.js";

type Env = Record<string, string | undefined>;

function configOf(result: ParseConfigResult): Config {
  if (!("config" in result)) throw new Error(`expected a config, got ${JSON.stringify(result)}`);
  return result.config;
}

function warningsOf(result: ParseConfigResult): readonly string[] {
  if (!("warnings" in result)) throw new Error(`expected a config, got ${JSON.stringify(result)}`);
  return result.warnings;
}

function helpOf(result: ParseConfigResult): string {
  if (!("help" in result)) throw new Error(`expected help, got ${JSON.stringify(result)}`);
  return result.help;
}

/** Every setting: its flag, its environment variable, a valid raw value and what that reads as. */
const SETTINGS = [
  [
    "grpcAddress",
    "--grpc-address",
    "INFERENCECACHE_GRPC_ADDRESS",
    "0.0.0.0:9000",
    { host: "0.0.0.0", port: 9000 },
  ],
  [
    "httpAddress",
    "--http-address",
    "INFERENCECACHE_HTTP_ADDRESS",
    "localhost:0",
    { host: "localhost", port: 0 },
  ],
  ["ttlSeconds", "--ttl-seconds", "INFERENCECACHE_TTL_SECONDS", "30", 30],
  [
    "sweepIntervalSeconds",
    "--sweep-interval-seconds",
    "INFERENCECACHE_SWEEP_INTERVAL_SECONDS",
    "0.5",
    0.5,
  ],
  ["maxEntries", "--max-entries", "INFERENCECACHE_MAX_ENTRIES", "2000", 2000],
  ["maxReplicas", "--max-replicas", "INFERENCECACHE_MAX_REPLICAS", "300", 300],
  ["maxChainLength", "--max-chain-length", "INFERENCECACHE_MAX_CHAIN_LENGTH", "64", 64],
  ["defaultMaxHints", "--default-max-hints", "INFERENCECACHE_DEFAULT_MAX_HINTS", "1", 1],
  ["maxMessageBytes", "--max-message-bytes", "INFERENCECACHE_MAX_MESSAGE_BYTES", "1024", 1024],
  [
    "shutdownDelaySeconds",
    "--shutdown-delay-seconds",
    "INFERENCECACHE_SHUTDOWN_DELAY_SECONDS",
    "2.5",
    2.5,
  ],
  [
    "shutdownGraceSeconds",
    "--shutdown-grace-seconds",
    "INFERENCECACHE_SHUTDOWN_GRACE_SECONDS",
    "0",
    0,
  ],
  ["logLevel", "--log-level", "INFERENCECACHE_LOG_LEVEL", "debug", "debug"],
  [
    "kvEventsConfig",
    "--kv-events-config",
    "INFERENCECACHE_KV_EVENTS_CONFIG",
    "/etc/inference-cache/engines.json",
    "/etc/inference-cache/engines.json",
  ],
  [
    "livenessWindowSeconds",
    "--liveness-window-seconds",
    "INFERENCECACHE_LIVENESS_WINDOW_SECONDS",
    "12.5",
    12.5,
  ],
  [
    "tierWeights",
    "--tier-weights",
    "INFERENCECACHE_TIER_WEIGHTS",
    "gpu=1,cpu=0.9,disk=0.25,other=0.1",
    { gpu: 1, cpu: 0.9, disk: 0.25, other: 0.1 },
  ],
] as const satisfies readonly (readonly [keyof Config, string, string, string, unknown])[];

describe("parseConfig()", () => {
  it("uses the documented defaults when nothing is set", () => {
    const result = parseConfig([], {});
    expect(configOf(result)).toEqual({
      grpcAddress: { host: "127.0.0.1", port: 50051 },
      httpAddress: { host: "127.0.0.1", port: 8080 },
      ttlSeconds: 120,
      sweepIntervalSeconds: 5,
      maxEntries: 1_000_000,
      maxReplicas: 50_000,
      maxChainLength: 8192,
      defaultMaxHints: 4,
      maxMessageBytes: 4_194_304,
      shutdownDelaySeconds: 1,
      shutdownGraceSeconds: 10,
      logLevel: "info",
      kvEventsConfig: undefined,
      livenessWindowSeconds: 30,
      tierWeights: { gpu: 1, cpu: 0.8, disk: 0.5, other: 0.5 },
    });
    expect(configOf(result)).toEqual(DEFAULT_CONFIG);
    expect(warningsOf(result)).toEqual([]);
  });

  it("covers every field of the config in its settings", () => {
    expect(SETTINGS.map(([key]) => key).sort()).toEqual(Object.keys(DEFAULT_CONFIG).sort());
  });

  it.each(SETTINGS)("reads %s from %s value", (key, flag, _env, raw, expected) => {
    expect(configOf(parseConfig([flag, raw], {}))[key]).toEqual(expected);
  });

  it.each(SETTINGS)("reads %s from %s=value", (key, flag, _env, raw, expected) => {
    expect(configOf(parseConfig([`${flag}=${raw}`], {}))[key]).toEqual(expected);
  });

  it.each(SETTINGS)(
    "reads %s from the environment variable %s",
    (key, _flag, env, raw, expected) => {
      expect(configOf(parseConfig([], { [env]: raw }))[key]).toEqual(expected);
    },
  );

  it.each(SETTINGS)(
    "prefers %s's flag %s over its environment variable",
    (key, flag, env, raw, expected) => {
      // The default differs from every table value, so this fails if the variable wins.
      const other = formatValue(DEFAULT_CONFIG[key]);
      expect(configOf(parseConfig([flag, raw], { [env]: other }))[key]).toEqual(expected);
    },
  );

  it.each(SETTINGS)("treats an empty %s variable as unset", (key, _flag, env) => {
    expect(configOf(parseConfig([], { [env]: "" }))[key]).toEqual(DEFAULT_CONFIG[key]);
  });

  it("lets a flag override a malformed environment variable", () => {
    const result = parseConfig(["--max-entries", "5"], { INFERENCECACHE_MAX_ENTRIES: "lots" });
    expect(configOf(result).maxEntries).toBe(5);
  });

  it("takes the last value of a repeated flag", () => {
    expect(configOf(parseConfig(["--max-entries=1", "--max-entries=2"], {})).maxEntries).toBe(2);
  });

  it("keeps a value containing '=' after the first one", () => {
    // Only the first '=' separates the flag from its value, so the rest is read (and rejected) whole.
    expect(parseConfig(["--log-level=info=debug"], {})).toEqual({
      error:
        'invalid value for --log-level: "info=debug" (expected one of fatal, error, warn, info, debug, trace, silent)',
    });
  });

  it.each<[string, string, Partial<Config>]>([
    ["an IPv6 loopback", "[::1]:50051", { grpcAddress: { host: "::1", port: 50051 } }],
    ["the IPv6 any address", "[::]:0", { grpcAddress: { host: "::", port: 0 } }],
    [
      "a hostname",
      "inference-cache.svc:7000",
      { grpcAddress: { host: "inference-cache.svc", port: 7000 } },
    ],
    ["the highest port", "0.0.0.0:65535", { grpcAddress: { host: "0.0.0.0", port: 65535 } }],
  ])("accepts %s as an address (%s)", (_name, raw, expected) => {
    expect(configOf(parseConfig(["--grpc-address", raw], {}))).toMatchObject(expected);
  });

  it.each<[string, number]>([
    ["1e3", 1000],
    [".25", 0.25],
    ["+7", 7],
  ])("reads the ttl %s as %d", (raw, expected) => {
    expect(configOf(parseConfig(["--ttl-seconds", raw], {})).ttlSeconds).toBe(expected);
  });

  it.each<[string, string[], Env, string]>([
    [
      "0",
      ["--ttl-seconds", "0"],
      {},
      "--ttl-seconds must be positive, got 0; using the default 120",
    ],
    [
      "-30.5",
      ["--ttl-seconds=-30.5"],
      {},
      "--ttl-seconds must be positive, got -30.5; using the default 120",
    ],
    [
      "-1",
      [],
      { INFERENCECACHE_SWEEP_INTERVAL_SECONDS: "-1" },
      "INFERENCECACHE_SWEEP_INTERVAL_SECONDS must be positive, got -1; using the default 5",
    ],
  ])(
    "falls back to the default for %s, warning with the setting's name",
    (_raw, argv, env, warning) => {
      const result = parseConfig(argv, env);
      expect(configOf(result)).toMatchObject({ ttlSeconds: 120, sweepIntervalSeconds: 5 });
      expect(warningsOf(result)).toEqual([warning]);
    },
  );

  it.each<[string, string[], Env, string]>([
    [
      "a non-numeric ttl flag",
      ["--ttl-seconds", "x"],
      {},
      'invalid value for --ttl-seconds: "x" (expected a number of seconds, at most 86400)',
    ],
    [
      "a non-numeric ttl variable",
      [],
      { INFERENCECACHE_TTL_SECONDS: "x" },
      'invalid value for INFERENCECACHE_TTL_SECONDS: "x" (expected a number of seconds, at most 86400)',
    ],
    [
      "an infinite ttl",
      ["--ttl-seconds=Infinity"],
      {},
      'invalid value for --ttl-seconds: "Infinity" (expected a number of seconds, at most 86400)',
    ],
    [
      "an overflowing ttl",
      ["--ttl-seconds=1e999"],
      {},
      'invalid value for --ttl-seconds: "1e999" (expected a number of seconds, at most 86400)',
    ],
    [
      "a ttl over one day",
      ["--ttl-seconds=86401"],
      {},
      'invalid value for --ttl-seconds: "86401" (expected a number of seconds, at most 86400)',
    ],
    [
      "a chain length no lookup's scratch should be sized to",
      ["--max-chain-length=10000000000"],
      {},
      'invalid value for --max-chain-length: "10000000000" (expected an integer from 1 to 1048576)',
    ],
    [
      "a hexadecimal ttl",
      ["--ttl-seconds=0x10"],
      {},
      'invalid value for --ttl-seconds: "0x10" (expected a number of seconds, at most 86400)',
    ],
    [
      "an empty ttl flag",
      ["--ttl-seconds="],
      {},
      'invalid value for --ttl-seconds: "" (expected a number of seconds, at most 86400)',
    ],
    [
      "a blank sweep interval",
      [],
      { INFERENCECACHE_SWEEP_INTERVAL_SECONDS: " " },
      'invalid value for INFERENCECACHE_SWEEP_INTERVAL_SECONDS: " " (expected a number of seconds)',
    ],
    [
      "a non-numeric max entries",
      ["--max-entries", "abc"],
      {},
      'invalid value for --max-entries: "abc" (expected an integer from 1 to 67108861)',
    ],
    [
      "zero max entries",
      [],
      { INFERENCECACHE_MAX_ENTRIES: "0" },
      'invalid value for INFERENCECACHE_MAX_ENTRIES: "0" (expected an integer from 1 to 67108861)',
    ],
    [
      "more max entries than the index can key",
      ["--max-entries", "67108862"],
      {},
      'invalid value for --max-entries: "67108862" (expected an integer from 1 to 67108861)',
    ],
    [
      "zero max replicas",
      ["--max-replicas", "0"],
      {},
      'invalid value for --max-replicas: "0" (expected an integer from 1 to 16777216)',
    ],
    [
      "a fractional max chain length",
      ["--max-chain-length=1.5"],
      {},
      'invalid value for --max-chain-length: "1.5" (expected an integer from 1 to 1048576)',
    ],
    [
      "a negative max chain length",
      ["--max-chain-length", "-3"],
      {},
      'invalid value for --max-chain-length: "-3" (expected an integer from 1 to 1048576)',
    ],
    [
      "an unsafe max entries",
      ["--max-entries=9007199254740993"],
      {},
      'invalid value for --max-entries: "9007199254740993" (expected an integer from 1 to 67108861)',
    ],
    [
      "zero default max hints",
      ["--default-max-hints=0"],
      {},
      'invalid value for --default-max-hints: "0" (expected an integer from 1 to 64)',
    ],
    [
      "default max hints over the limit on any answer",
      ["--default-max-hints=65"],
      {},
      'invalid value for --default-max-hints: "65" (expected an integer from 1 to 64)',
    ],
    [
      "a max message size below 1024",
      ["--max-message-bytes=1023"],
      {},
      'invalid value for --max-message-bytes: "1023" (expected an integer from 1024 to 2147483647)',
    ],
    [
      "a max message size over 2 GiB, which neither server can take",
      ["--max-message-bytes=4294967296"],
      {},
      'invalid value for --max-message-bytes: "4294967296" (expected an integer from 1024 to 2147483647)',
    ],
    [
      "a max message size with a unit",
      [],
      { INFERENCECACHE_MAX_MESSAGE_BYTES: "4MiB" },
      'invalid value for INFERENCECACHE_MAX_MESSAGE_BYTES: "4MiB" (expected an integer from 1024 to 2147483647)',
    ],
    [
      "a negative shutdown grace",
      ["--shutdown-grace-seconds=-1"],
      {},
      'invalid value for --shutdown-grace-seconds: "-1" (expected a number of seconds from 0 to 3600)',
    ],
    [
      "a shutdown grace longer than a timer can wait",
      ["--shutdown-grace-seconds", "3000000"],
      {},
      'invalid value for --shutdown-grace-seconds: "3000000" (expected a number of seconds from 0 to 3600)',
    ],
    [
      "a negative shutdown delay",
      [],
      { INFERENCECACHE_SHUTDOWN_DELAY_SECONDS: "-1" },
      'invalid value for INFERENCECACHE_SHUTDOWN_DELAY_SECONDS: "-1" (expected a number of seconds from 0 to 3600)',
    ],
    [
      "an unknown log level",
      ["--log-level", "verbose"],
      {},
      'invalid value for --log-level: "verbose" (expected one of fatal, error, warn, info, debug, trace, silent)',
    ],
    [
      "an upper-case log level",
      [],
      { INFERENCECACHE_LOG_LEVEL: "INFO" },
      'invalid value for INFERENCECACHE_LOG_LEVEL: "INFO" (expected one of fatal, error, warn, info, debug, trace, silent)',
    ],
    [
      "a zero liveness window",
      ["--liveness-window-seconds", "0"],
      {},
      'invalid value for --liveness-window-seconds: "0" (expected a number of seconds above 0 and at most 86400)',
    ],
    [
      "a liveness window over a day",
      [],
      { INFERENCECACHE_LIVENESS_WINDOW_SECONDS: "86401" },
      'invalid value for INFERENCECACHE_LIVENESS_WINDOW_SECONDS: "86401" (expected a number of seconds above 0 and at most 86400)',
    ],
    ...(
      [
        ["a tier weight above 1", "gpu=1.5"],
        ["a zero tier weight", "disk=0"],
        ["a negative tier weight", "cpu=-0.5"],
        ["an unknown tier", "hbm=1"],
        ["an upper-case tier", "GPU=1"],
        ["a tier given twice", "cpu=0.5,cpu=0.6"],
        ["a tier without a weight", "cpu"],
        ["a weight that is not a number", "cpu=high"],
        ["a trailing comma", "cpu=0.5,"],
        ["two equals signs", "cpu=0.5=0.6"],
      ] as const
    ).map(([name, raw]): [string, string[], Env, string] => [
      name,
      ["--tier-weights", raw],
      {},
      `invalid value for --tier-weights: ${JSON.stringify(raw)} (expected comma-separated tier=weight pairs, tiers gpu, cpu, disk, other, weights in (0, 1], e.g. gpu=1,cpu=0.8)`,
    ]),
  ])("rejects %s", (_name, argv, env, error) => {
    expect(parseConfig(argv, env)).toEqual({ error });
  });

  it("keeps the default weight of every tier --tier-weights leaves out", () => {
    expect(configOf(parseConfig(["--tier-weights", " cpu = 0.9 "], {})).tierWeights).toEqual({
      gpu: 1,
      cpu: 0.9,
      disk: 0.5,
      other: 0.5,
    });
  });

  it.each<[string, string]>([
    ["a missing port", "127.0.0.1"],
    ["an empty port", "127.0.0.1:"],
    ["a port above 65535", "127.0.0.1:65536"],
    ["a negative port", "127.0.0.1:-1"],
    ["a missing host", ":50051"],
    ["an unbracketed IPv6 host", "::1:50051"],
    ["empty brackets", "[]:50051"],
    ["a space in the host", "my host:80"],
  ])("rejects an address with %s (%s)", (_name, raw) => {
    expect(parseConfig(["--http-address", raw], {})).toEqual({
      error: `invalid value for --http-address: ${JSON.stringify(raw)} (expected host:port with a port from 0 to 65535, and an IPv6 host in brackets)`,
    });
  });

  it.each<[string, string[], string]>([
    ["an unknown flag", ["--foo"], "unknown flag --foo; see --help"],
    ["an unknown flag with a value", ["--foo=1"], "unknown flag --foo; see --help"],
    ["a single-dash flag", ["-v"], 'unexpected argument "-v"; see --help'],
    ["a positional argument", ["serve"], 'unexpected argument "serve"; see --help'],
    [
      "a flag at the end without its value",
      ["--max-entries"],
      "missing value for --max-entries; see --help",
    ],
    [
      "a flag followed by another flag",
      ["--log-level", "--max-entries", "5"],
      "missing value for --log-level; see --help",
    ],
  ])("rejects %s", (_name, argv, error) => {
    expect(parseConfig(argv, {})).toEqual({ error });
  });

  it("reads a negative number after a flag as its value, not as a flag", () => {
    expect(warningsOf(parseConfig(["--ttl-seconds", "-5"], {}))).toEqual([
      "--ttl-seconds must be positive, got -5; using the default 120",
    ]);
  });

  it("warns about unknown INFERENCECACHE_ variables and ignores other variables", () => {
    const result = parseConfig([], {
      INFERENCECACHE_TTL: "30",
      INFERENCECACHE_TTL_SECONDS: "30",
      HOME: "/home/operator",
    });
    expect(configOf(result).ttlSeconds).toBe(30);
    expect(warningsOf(result)).toEqual([
      "unknown environment variable INFERENCECACHE_TTL is ignored; see --help",
    ]);
  });

  it.each([[["--help"]], [["-h"]], [["--max-entries", "5", "-h"]], [["--bogus", "--help"]]])(
    "answers %j with the usage text",
    (argv) => {
      expect(helpOf(parseConfig(argv, {}))).toMatch(/^Usage: inference-cache-index \[options\]/);
    },
  );

  it.each(SETTINGS)(
    "lists %s's flag %s, its variable %s and its default in the usage text",
    (key, flag, env) => {
      const help = helpOf(parseConfig(["--help"], {}));
      const entry = help.slice(help.indexOf(`  ${flag} `));
      const defaultLine = entry.split("\n").find((line) => line.includes("default:"));
      expect(defaultLine).toContain(env);
      expect(defaultLine).toContain(`default: ${formatValue(DEFAULT_CONFIG[key])}`);
    },
  );

  it("describes every setting in the usage text", () => {
    const help = helpOf(parseConfig(["--help"], {}));
    const blocks = help.split(/\n(?= {2}--)/).slice(1);
    expect(blocks).toHaveLength(SETTINGS.length);
    for (const block of blocks) expect(block.split("\n")[1]?.trim()).not.toBe("");
  });
});

function formatValue(value: Config[keyof Config]): string {
  if (value === undefined) return "none";
  if (typeof value !== "object") return String(value);
  if ("host" in value) return formatAddress(value);
  return Object.entries(value)
    .map(([tier, weight]) => `${tier}=${weight}`)
    .join(",");
}
