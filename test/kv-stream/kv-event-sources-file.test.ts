import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  parseKvEventSources,
  readKvEventSourcesFile,
} from "../../src/kv-stream/kv-event-sources-file.js";

/** The fields every source needs; tests add or override the rest. */
const required = {
  endpoint: "tcp://10.0.0.7:5557",
  tenant: "acme",
  model: "llama-3-8b",
  hashScheme: "vllm-sha256_cbor-bs16",
};

function sourcesText(...sources: unknown[]): string {
  return JSON.stringify({ sources });
}

/** Two sources of tenant "acme", `a` and `b` on endpoints of their own, with the fields given. */
function twoSources(first: object, second: object): string {
  return sourcesText(
    { ...required, name: "a", ...first },
    { ...required, name: "b", endpoint: "tcp://10.0.0.8:5557", ...second },
  );
}

/** The error for a second source whose replica ids the first's overlap, `why`. */
function sharedIds(why: string, advice = ""): string {
  return `sources[1] would index batches under the replica ids of sources[0] (${why}; tenant "acme"): give each source its own replicaId${advice}`;
}

describe("parseKvEventSources()", () => {
  it("applies the documented defaults to a source with only the required fields", () => {
    expect(parseKvEventSources(sourcesText(required))).toEqual({
      sources: [
        {
          name: "10.0.0.7:5557",
          engine: "vllm",
          endpoint: "tcp://10.0.0.7:5557",
          replayEndpoint: undefined,
          topic: "",
          tenant: "acme",
          model: "llama-3-8b",
          hashScheme: "vllm-sha256_cbor-bs16",
          blockSize: 16,
          replicaId: "10.0.0.7:5557",
          replicaIdTemplate: "{replica}/dp{rank}",
        },
      ],
    });
  });

  it("keeps every field a source sets", () => {
    const full = {
      name: "pod-7-dp1",
      engine: "sglang",
      endpoint: "tcp://[fd00::7]:5558",
      replayEndpoint: "tcp://pod-7.engines:5559",
      topic: "kv-events",
      tenant: "acme",
      model: "llama-3-8b",
      hashScheme: "sglang-sha256-bs32",
      blockSize: 32,
      replicaId: "pod-7",
      replicaIdTemplate: "{replica}-rank{rank}",
    };
    expect(parseKvEventSources(sourcesText(full))).toEqual({ sources: [full] });
  });

  it("names a source by its replica id when it has no name, and reads ipc:// paths", () => {
    const parsed = parseKvEventSources(
      sourcesText(
        { ...required, replicaId: "pod-a" },
        { ...required, endpoint: "ipc:///run/vllm/kv.sock" },
      ),
    );
    expect(parsed.sources?.map((s) => [s.name, s.replicaId])).toEqual([
      ["pod-a", "pod-a"],
      ["/run/vllm/kv.sock", "/run/vllm/kv.sock"],
    ]);
  });

  it("accepts host names as a cluster's DNS writes them", () => {
    const endpoint = "tcp://vllm-0.vllm_headless.ns.svc.cluster.local:5557";
    expect(parseKvEventSources(sourcesText({ ...required, endpoint })).sources?.[0]?.endpoint).toBe(
      endpoint,
    );
  });

  it("accepts names of the longest length the index accepts, and a replica id that leaves room for every rank", () => {
    const longest = "n".repeat(256);
    const replicaId = "r".repeat(256 - "/dp".length - String(Number.MAX_SAFE_INTEGER).length);
    const source = { ...required, tenant: longest, model: longest, hashScheme: longest, replicaId };
    expect(parseKvEventSources(sourcesText(source)).sources?.[0]).toMatchObject(source);
  });

  it("accepts one replica id in two tenants, and ids that no rank makes alike", () => {
    const text = sourcesText(
      { ...required, name: "a", replicaId: "pod" },
      {
        ...required,
        name: "b",
        endpoint: "tcp://10.0.0.8:5557",
        replicaId: "pod",
        tenant: "other",
      },
      { ...required, name: "c", endpoint: "tcp://10.0.0.9:5557", replicaId: "pod/dp" },
      { ...required, name: "d", endpoint: "tcp://10.0.0.10:5557", replicaId: "pod/dp01" },
    );
    expect(parseKvEventSources(text).error).toBeUndefined();
  });

  it("accepts an empty list", () => {
    expect(parseKvEventSources('{"sources": []}')).toEqual({ sources: [] });
  });

  it.each([
    ["not JSON", "{", /^not valid JSON: /],
    ["an array", "[]", 'expected an object {"sources": [...]}'],
    ["no sources", "{}", "sources must be an array"],
    [
      "an unknown top-level field",
      '{"sources": [], "default": {}}',
      'unknown field default (expected only "sources")',
    ],
    ["a source that is not an object", sourcesText("tcp://x:1"), "sources[0] must be an object"],
    [
      "a missing endpoint",
      sourcesText({ ...required, endpoint: undefined }),
      "sources[0].endpoint is required",
    ],
    [
      "a missing tenant",
      sourcesText({ ...required, tenant: undefined }),
      "sources[0].tenant is required",
    ],
    [
      "a missing model",
      sourcesText(required, { ...required, model: undefined, name: "b" }),
      "sources[1].model is required",
    ],
    [
      "a missing hash scheme",
      sourcesText({ ...required, hashScheme: undefined }),
      "sources[0].hashScheme is required",
    ],
    [
      "an empty tenant",
      sourcesText({ ...required, tenant: "" }),
      "sources[0].tenant must not be empty",
    ],
    [
      "a number as a model",
      sourcesText({ ...required, model: 7 }),
      "sources[0].model must be a string",
    ],
    [
      "a bind address as endpoint",
      sourcesText({ ...required, endpoint: "tcp://*:5557" }),
      `sources[0].endpoint must be tcp://host:port (a host name or address to connect to: letters, digits, '.', '-', '_', starting with a letter or digit; not *) or ipc://path, got "tcp://*:5557"`,
    ],
    // Hosts libzmq refuses when connecting, which would leave the source dead after start-up.
    [
      "a host with a character libzmq refuses",
      sourcesText({ ...required, endpoint: "tcp://pod@7:5557" }),
      /^sources\[0\]\.endpoint must be tcp:\/\/host:port/,
    ],
    [
      "a host with a non-ASCII letter",
      sourcesText({ ...required, endpoint: "tcp://p\u00f6d-7:5557" }),
      /^sources\[0\]\.endpoint must be tcp:\/\/host:port/,
    ],
    [
      "a host starting with a hyphen",
      sourcesText({ ...required, endpoint: "tcp://-pod:5557" }),
      /^sources\[0\]\.endpoint must be tcp:\/\/host:port/,
    ],
    [
      "a host starting with an underscore",
      sourcesText({ ...required, endpoint: "tcp://_pod:5557" }),
      /^sources\[0\]\.endpoint must be tcp:\/\/host:port/,
    ],
    [
      "an ipc path too long for a Unix socket",
      sourcesText({ ...required, endpoint: `ipc:///run/${"x".repeat(103)}` }),
      "sources[0].endpoint's ipc path is 108 bytes long; a Unix socket path has at most 107",
    ],
    [
      "an endpoint without a scheme",
      sourcesText({ ...required, endpoint: "10.0.0.7:5557" }),
      /^sources\[0\]\.endpoint must be tcp:\/\/host:port/,
    ],
    [
      "port 0",
      sourcesText({ ...required, endpoint: "tcp://10.0.0.7:0" }),
      /^sources\[0\]\.endpoint must be/,
    ],
    [
      "a bad replay endpoint",
      sourcesText({ ...required, replayEndpoint: "udp://10.0.0.7:5558" }),
      /^sources\[0\]\.replayEndpoint must be/,
    ],
    [
      "an unknown engine",
      sourcesText({ ...required, engine: "tgi" }),
      "sources[0].engine must be one of vllm, sglang, got tgi",
    ],
    [
      "a zero block size",
      sourcesText({ ...required, blockSize: 0 }),
      "sources[0].blockSize must be a positive integer, got 0",
    ],
    [
      "a fractional block size",
      sourcesText({ ...required, blockSize: 1.5 }),
      "sources[0].blockSize must be a positive integer, got 1.5",
    ],
    [
      "a block size as text",
      sourcesText({ ...required, blockSize: "16" }),
      'sources[0].blockSize must be a positive integer, got "16"',
    ],
    [
      "a template without {rank}",
      sourcesText({ ...required, replicaIdTemplate: "{replica}" }),
      "sources[0].replicaIdTemplate must contain {rank}",
    ],
    // The index refuses longer names in every batch; the file is refused instead, naming the field.
    [
      "a tenant longer than the index accepts",
      sourcesText({ ...required, tenant: "t".repeat(257) }),
      "sources[0].tenant is 257 characters long; at most 256 are allowed",
    ],
    [
      "a model longer than the index accepts",
      sourcesText({ ...required, model: "m".repeat(257) }),
      "sources[0].model is 257 characters long; at most 256 are allowed",
    ],
    [
      "a hash scheme longer than the index accepts",
      sourcesText({ ...required, hashScheme: "s".repeat(257) }),
      "sources[0].hashScheme is 257 characters long; at most 256 are allowed",
    ],
    [
      "a replica id longer than the index accepts",
      sourcesText({ ...required, replicaId: "r".repeat(257) }),
      "sources[0].replicaId is 257 characters long; at most 256 are allowed",
    ],
    [
      "a replica id that the template makes too long for a large rank",
      sourcesText({ ...required, replicaId: "r".repeat(254) }),
      `sources[0].replicaId with replicaIdTemplate "{replica}/dp{rank}" makes replica ids of up to 273 characters (at data-parallel rank ${Number.MAX_SAFE_INTEGER}); at most 256 are allowed`,
    ],
    [
      "a template that makes the replica id too long",
      sourcesText({
        ...required,
        replicaId: "pod-7",
        replicaIdTemplate: `{replica}-${"x".repeat(240)}-{rank}`,
      }),
      `sources[0].replicaId with replicaIdTemplate "{replica}-${"x".repeat(240)}-{rank}" makes replica ids of up to 263 characters (at data-parallel rank ${Number.MAX_SAFE_INTEGER}); at most 256 are allowed`,
    ],
    [
      "a misspelt field",
      sourcesText({ ...required, replay_endpoint: "tcp://10.0.0.7:5558" }),
      /^sources\[0\]\.replay_endpoint is not a known field \(known: name, engine, endpoint, /,
    ],
    [
      "two sources with the same name",
      sourcesText(required, {
        ...required,
        endpoint: "tcp://10.0.0.8:5557",
        name: "10.0.0.7:5557",
      }),
      'sources[1].name "10.0.0.7:5557" is not unique',
    ],
    [
      "two sources on the same endpoint",
      sourcesText(required, required),
      'sources[1].name "10.0.0.7:5557" is not unique',
    ],
    [
      "two sources of one tenant under the same replicaId",
      twoSources({ replicaId: "pod" }, { replicaId: "pod" }),
      sharedIds('replicaId "pod"'),
    ],
    [
      "two sources whose replicaIdTemplate makes the same ids at every rank",
      twoSources({ replicaIdTemplate: "dp{rank}" }, { replicaIdTemplate: "dp{rank}" }),
      sharedIds(
        'replicaIdTemplate "dp{rank}" makes "dp0", "dp1", ...',
        ", and its replicaIdTemplate a {replica}",
      ),
    ],
    [
      "a replicaId that is another source's id at some rank",
      twoSources({ replicaId: "pod" }, { replicaId: "pod/dp12" }),
      sharedIds('replicaId "pod/dp12" is sources[0]\'s id at rank 12'),
    ],
    [
      "a source whose id at some rank is another's replicaId",
      twoSources({ replicaId: "pod/dp3" }, { replicaId: "pod" }),
      sharedIds("sources[0]'s replicaId \"pod/dp3\" is this source's id at rank 3"),
    ],
    [
      "a template whose second {rank} is followed by a digit",
      twoSources(
        { replicaId: "a", replicaIdTemplate: "{replica}{rank}-{rank}0" },
        { replicaId: "a5-50" },
      ),
      sharedIds('replicaId "a5-50" is sources[0]\'s id at rank 5'),
    ],
  ])("rejects %s", (_, text, expected) => {
    const { error } = parseKvEventSources(text);
    if (typeof expected === "string") expect(error).toBe(expected);
    else expect(error).toMatch(expected);
  });
});

describe("readKvEventSourcesFile()", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kv-sources-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file", async () => {
    const path = join(dir, "sources.json");
    await writeFile(path, sourcesText(required));
    expect((await readKvEventSourcesFile(path)).sources).toHaveLength(1);
  });

  it("names the file in a parse error", async () => {
    const path = join(dir, "sources.json");
    await writeFile(path, sourcesText({ ...required, tenant: undefined }));
    expect(await readKvEventSourcesFile(path)).toEqual({
      error: `${path}: sources[0].tenant is required`,
    });
  });

  it("returns an error, not an exception, for a missing file", async () => {
    const path = join(dir, "missing.json");
    expect(await readKvEventSourcesFile(path)).toEqual({ error: `cannot read ${path}: ENOENT` });
  });
});
