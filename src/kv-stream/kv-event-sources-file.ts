import { readFile } from "node:fs/promises";
import { nameProblem } from "../core/request-validation.js";
import { MAX_NAME_LENGTH } from "../core/types.js";
import { type KvEventSource, replicaIdFor } from "../kv-events/kv-event-source.js";

/** What {@link parseKvEventSources} and {@link readKvEventSourcesFile} give. */
export type KvEventSourcesResult =
  | { readonly sources: readonly KvEventSource[]; readonly error?: undefined }
  | { readonly error: string; readonly sources?: undefined };

/** Tokens per block when a source does not say: vLLM's default block size. */
export const DEFAULT_KV_EVENT_BLOCK_SIZE = 16;

/** How a data-parallel rank joins the replica id when a source does not say. */
export const DEFAULT_REPLICA_ID_TEMPLATE = "{replica}/dp{rank}";

/** Every field a source may have, in the order errors are reported. */
const FIELDS = [
  "name",
  "engine",
  "endpoint",
  "replayEndpoint",
  "topic",
  "tenant",
  "model",
  "hashScheme",
  "blockSize",
  "replicaId",
  "replicaIdTemplate",
] as const;
const KNOWN_FIELDS = new Set<string>(FIELDS);
const ENGINES = ["vllm", "sglang"] as const;

// tcp://host:port with a host the sidecar can connect to (no `*`): a name or IPv4 address as
// libzmq takes them (it refuses others only when connecting: other characters, or a first one
// that is not a letter or digit), IPv6 in brackets; or ipc://path, the path short enough for a
// Unix socket address (108 bytes with its terminator).
const TCP_ENDPOINT = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.-]*):([0-9]{1,5})$/;
const IPC_ENDPOINT = /^ipc:\/\/(\S+)$/;
const MAX_IPC_PATH_BYTES = 107;

/**
 * The largest data-parallel rank a batch can carry: the decoder reads any non-negative safe
 * integer, and a stream caps how many ranks it keeps (`MAX_RANKS`), not their values.
 */
const MAX_RANK = Number.MAX_SAFE_INTEGER;

/**
 * Reads a sources file (JSON, see {@link parseKvEventSources}). An unreadable file is an error
 * value naming the path and the cause, like a malformed one; it never throws.
 */
export async function readKvEventSourcesFile(path: string): Promise<KvEventSourcesResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { error: `cannot read ${path}: ${typeof code === "string" ? code : String(error)}` };
  }
  const parsed = parseKvEventSources(text);
  return parsed.error === undefined ? parsed : { error: `${path}: ${parsed.error}` };
}

/**
 * Parses the engines' KV-event sources: JSON `{"sources": [{...}, ...]}`, each source an object
 * with the fields of {@link KvEventSource} (camelCase). Pure; never throws.
 *
 * - Required: `endpoint` (`tcp://host:port` or `ipc://path`; the sidecar connects, so no `*`),
 *   `tenant`, `model`, `hashScheme` (non-empty strings).
 * - Defaults: `engine` "vllm" ("vllm" or "sglang"); `topic` "" (every message); `replayEndpoint`
 *   none (gaps then clear the replica); `blockSize` {@link DEFAULT_KV_EVENT_BLOCK_SIZE} (a positive
 *   integer, used when an event does not carry one); `replicaId` the endpoint's `host:port` (the
 *   path for `ipc://`); `replicaIdTemplate` {@link DEFAULT_REPLICA_ID_TEMPLATE}, which must contain
 *   `{rank}`; `name` the replica id.
 * - `tenant`, `model`, `hashScheme` and `replicaId` are held to the index's rules for names (at
 *   most {@link MAX_NAME_LENGTH} characters), and so is every replica id `replicaIdTemplate` makes
 *   from `replicaId`, up to the largest rank a batch can carry: else the index would refuse each
 *   of the source's batches, which only a throttled warning would tell.
 * - Names must be unique, and so must the replica ids two sources of one tenant index batches
 *   under (see {@link ReplicaIdClaims}). An unknown field is an error (a misspelt
 *   `replay_endpoint` must not silently mean "no replay").
 *
 * Errors name the field as a path into the file: `sources[2].endpoint is required`.
 */
export function parseKvEventSources(text: string): KvEventSourcesResult {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return { error: `not valid JSON: ${(error as Error).message}` };
  }
  if (!isObject(document)) return { error: 'expected an object {"sources": [...]}' };
  for (const key of Object.keys(document)) {
    if (key !== "sources") return { error: `unknown field ${key} (expected only "sources")` };
  }
  const list = document.sources;
  if (!Array.isArray(list)) return { error: "sources must be an array" };

  const sources: KvEventSource[] = [];
  const names = new Set<string>();
  const claims = new ReplicaIdClaims();
  for (let i = 0; i < list.length; i++) {
    const parsed = parseSource(list[i], `sources[${i}]`);
    if ("error" in parsed) return parsed;
    if (names.has(parsed.source.name)) {
      return { error: `sources[${i}].name ${JSON.stringify(parsed.source.name)} is not unique` };
    }
    const shared = claims.claim(parsed.source, i);
    if (shared !== undefined) {
      const fix = shared.template
        ? "give each source its own replicaId, and its replicaIdTemplate a {replica}"
        : "give each source its own replicaId";
      return {
        error: `sources[${i}] would index batches under the replica ids of sources[${shared.with}] (${shared.why}; tenant ${JSON.stringify(parsed.source.tenant)}): ${fix}`,
      };
    }
    names.add(parsed.source.name);
    sources.push(parsed.source);
  }
  return { sources };
}

/** Two sources that would index batches under one replica id: the earlier one, and how. */
interface SharedReplicaIds {
  /** The earlier source's index in the file. */
  readonly with: number;
  readonly why: string;
  /** Whether the templates alone make the ids alike (so the fix involves them). */
  readonly template: boolean;
}

/** A source as {@link ReplicaIdClaims} keeps it. */
interface Claimant {
  readonly index: number;
  readonly source: KvEventSource;
  /** Its template with its replica id in place (see rankedForm). */
  readonly form: string;
  /** The form's text before its first `{rank}`. */
  readonly prefix: string;
  /** Matches the ids the source makes at some rank; group 1 is the rank. */
  readonly ranked: RegExp;
}

/**
 * The replica ids the sources read so far index batches under, by tenant, so that a source that
 * would share one with an earlier source is found: each would then clear, and keep alive, the
 * other's entries (a restart or gap of one clears the other's replica). Found: the same
 * `replicaId` (batches without a rank); templates that make the same ids at every rank; one's
 * `replicaId` being the other's id at some rank. Not found: ids that two different templates make
 * alike at different ranks ("x{rank}" at 11, "x1{rank}" at 1). The index keys replicas by
 * (tenant, model, id), and a source's LoRA adapters are models of its own choosing, so sources of
 * one tenant are compared whatever their models.
 *
 * Cost per source: O(id length) map lookups and regular-expression tests for the sources whose
 * template starts as its id does, and a binary search of the ids read so far; not O(sources).
 */
class ReplicaIdClaims {
  readonly #tenants = new Map<string, TenantClaims>();

  /** Records `source` (the file's `index`-th); returns how it shares ids with an earlier one. */
  claim(source: KvEventSource, index: number): SharedReplicaIds | undefined {
    let tenant = this.#tenants.get(source.tenant);
    if (tenant === undefined) {
      tenant = { byId: new Map(), byRankedForm: new Map(), byPrefix: new Map(), ids: [] };
      this.#tenants.set(source.tenant, tenant);
    }
    const form = rankedForm(source);
    const prefix = literalPrefix(form);
    const claimant: Claimant = { index, source, form, prefix, ranked: rankedPattern(form) };
    const shared = sharedWithEarlier(tenant, claimant);
    if (shared !== undefined) return shared;
    tenant.byId.set(source.replicaId, claimant);
    tenant.byRankedForm.set(form, claimant);
    const withPrefix = tenant.byPrefix.get(prefix);
    if (withPrefix === undefined) tenant.byPrefix.set(prefix, [claimant]);
    else withPrefix.push(claimant);
    tenant.ids.splice(firstAtOrAfter(tenant.ids, source.replicaId), 0, claimant);
    return undefined;
  }
}

interface TenantClaims {
  readonly byId: Map<string, Claimant>;
  readonly byRankedForm: Map<string, Claimant>;
  /** By the text of their ranked form before its first `{rank}`. */
  readonly byPrefix: Map<string, Claimant[]>;
  /** Sorted by replicaId. */
  readonly ids: Claimant[];
}

function sharedWithEarlier(tenant: TenantClaims, claimant: Claimant): SharedReplicaIds | undefined {
  const { source } = claimant;
  const id = source.replicaId;
  const sameId = tenant.byId.get(id);
  if (sameId !== undefined) {
    return { with: sameId.index, why: `replicaId ${JSON.stringify(id)}`, template: false };
  }
  const sameForm = tenant.byRankedForm.get(claimant.form);
  if (sameForm !== undefined) {
    const made = [0, 1].map((rank) => JSON.stringify(replicaIdFor(source, rank))).join(", ");
    const template = JSON.stringify(source.replicaIdTemplate);
    return {
      with: sameForm.index,
      why: `replicaIdTemplate ${template} makes ${made}, ...`,
      template: true,
    };
  }
  // This source's replicaId as an earlier source's id at some rank: only an earlier source whose
  // ranked form starts with a prefix of the id can make it.
  for (let length = 0; length <= id.length; length++) {
    for (const earlier of tenant.byPrefix.get(id.slice(0, length)) ?? []) {
      const rank = rankIn(earlier.ranked, id);
      if (rank === undefined) continue;
      const why = `replicaId ${JSON.stringify(id)} is sources[${earlier.index}]'s id at rank ${rank}`;
      return { with: earlier.index, why, template: false };
    }
  }
  // An earlier source's replicaId as this source's id at some rank: only one that starts with the
  // text of this source's ranked form before its first {rank}.
  const { prefix } = claimant;
  for (let i = firstAtOrAfter(tenant.ids, prefix); i < tenant.ids.length; i++) {
    const earlier = tenant.ids[i] as Claimant;
    const earlierId = earlier.source.replicaId;
    if (!earlierId.startsWith(prefix)) break;
    const rank = rankIn(claimant.ranked, earlierId);
    if (rank === undefined) continue;
    const why = `sources[${earlier.index}]'s replicaId ${JSON.stringify(earlierId)} is this source's id at rank ${rank}`;
    return { with: earlier.index, why, template: false };
  }
  return undefined;
}

/** The first place in `ids` (sorted by replicaId) whose replicaId is not below `id`. */
function firstAtOrAfter(ids: readonly Claimant[], id: string): number {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((ids[middle] as Claimant).source.replicaId < id) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The source's template with its replica id in place, `{rank}` left as it is. */
function rankedForm(source: KvEventSource): string {
  return source.replicaIdTemplate.replaceAll("{replica}", source.replicaId);
}

/** The text of a ranked form before its first `{rank}` (every template has one). */
function literalPrefix(form: string): string {
  return form.slice(0, form.indexOf("{rank}"));
}

/** A pattern of the ids a ranked form makes, the rank in group 1. */
function rankedPattern(form: string): RegExp {
  const parts = form.split("{rank}").map(escapeRegExp);
  // A rank is written as String(rank) makes it: no leading zeros; every {rank} is the same one,
  // a backreference kept apart from any digit after it (`\10` would read as another escape).
  return new RegExp(`^${parts[0]}(0|[1-9][0-9]*)${parts.slice(1).join("(?:\\1)")}$`);
}

/** The rank at which `pattern` (see rankedPattern) makes `id`, or undefined when none does. */
function rankIn(pattern: RegExp, id: string): number | undefined {
  const match = pattern.exec(id);
  if (match === null) return undefined;
  const rank = Number(match[1]);
  return Number.isSafeInteger(rank) ? rank : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function parseSource(
  raw: unknown,
  at: string,
): { readonly source: KvEventSource } | { readonly error: string } {
  if (!isObject(raw)) return { error: `${at} must be an object` };
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key)) {
      return { error: `${at}.${key} is not a known field (known: ${FIELDS.join(", ")})` };
    }
  }
  const fields = new SourceFields(raw, at);
  const endpoint = fields.endpoint("endpoint", true);
  const replayEndpoint = fields.endpoint("replayEndpoint", false);
  const engine = fields.string("engine", false, "vllm");
  const topic = fields.string("topic", false, "", true);
  const tenant = fields.string("tenant", true);
  const model = fields.string("model", true);
  const hashScheme = fields.string("hashScheme", true);
  const blockSize = fields.blockSize();
  const replicaId = fields.string("replicaId", false, endpoint && replicaIdOf(endpoint));
  const replicaIdTemplate = fields.string("replicaIdTemplate", false, DEFAULT_REPLICA_ID_TEMPLATE);
  const name = fields.string("name", false, replicaId);
  if (fields.error !== undefined) return { error: fields.error };
  if (!ENGINES.some((known) => known === engine)) {
    return { error: `${at}.engine must be one of ${ENGINES.join(", ")}, got ${String(engine)}` };
  }
  if (!replicaIdTemplate?.includes("{rank}")) {
    return { error: `${at}.replicaIdTemplate must contain {rank}` };
  }
  const source: KvEventSource = {
    name: name as string,
    engine: engine as KvEventSource["engine"],
    endpoint: endpoint as string,
    replayEndpoint,
    topic: topic as string,
    tenant: tenant as string,
    model: model as string,
    hashScheme: hashScheme as string,
    blockSize,
    replicaId: replicaId as string,
    replicaIdTemplate,
  };
  const error = indexNameError(source, at);
  return error === undefined ? { source } : { error };
}

/** Why the index would refuse every batch of `source`, or undefined; `at` is the source's path. */
function indexNameError(source: KvEventSource, at: string): string | undefined {
  for (const key of ["tenant", "model", "hashScheme", "replicaId"] as const) {
    const problem = nameProblem(`${at}.${key}`, source[key], true);
    if (problem !== undefined) return problem.message;
  }
  // The longest rank in decimal makes the longest id, however often the template says {rank}.
  const longest = replicaIdFor(source, MAX_RANK).length;
  if (longest <= MAX_NAME_LENGTH) return undefined;
  const template = JSON.stringify(source.replicaIdTemplate);
  return `${at}.replicaId with replicaIdTemplate ${template} makes replica ids of up to ${longest} characters (at data-parallel rank ${MAX_RANK}); at most ${MAX_NAME_LENGTH} are allowed`;
}

/** Reads one source's fields, keeping the first error found. */
class SourceFields {
  readonly #raw: Readonly<Record<string, unknown>>;
  readonly #at: string;
  #error: string | undefined;

  constructor(raw: Readonly<Record<string, unknown>>, at: string) {
    this.#raw = raw;
    this.#at = at;
  }

  get error(): string | undefined {
    return this.#error;
  }

  string(
    key: string,
    required: boolean,
    fallback?: string,
    allowEmpty = false,
  ): string | undefined {
    const value = this.#raw[key];
    if (value === undefined || value === null) {
      if (required) this.#fail(`${key} is required`);
      return fallback;
    }
    if (typeof value !== "string") return this.#fail(`${key} must be a string`);
    if (value === "" && !allowEmpty) return this.#fail(`${key} must not be empty`);
    return value;
  }

  endpoint(key: string, required: boolean): string | undefined {
    const value = this.string(key, required);
    if (value === undefined) return undefined;
    const tcp = TCP_ENDPOINT.exec(value);
    if (tcp !== null) {
      const port = Number(tcp[2]);
      if (port >= 1 && port <= 65535) return value;
    } else {
      const ipc = IPC_ENDPOINT.exec(value);
      if (ipc !== null) {
        const bytes = new TextEncoder().encode(ipc[1]).length;
        if (bytes <= MAX_IPC_PATH_BYTES) return value;
        return this.#fail(
          `${key}'s ipc path is ${bytes} bytes long; a Unix socket path has at most ${MAX_IPC_PATH_BYTES}`,
        );
      }
    }
    return this.#fail(
      `${key} must be tcp://host:port (a host name or address to connect to: letters, digits, '.', '-', '_', starting with a letter or digit; not *) or ipc://path, got ${JSON.stringify(value)}`,
    );
  }

  blockSize(): number {
    const value = this.#raw.blockSize;
    if (value === undefined || value === null) return DEFAULT_KV_EVENT_BLOCK_SIZE;
    if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return value;
    this.#fail(`blockSize must be a positive integer, got ${JSON.stringify(value)}`);
    return DEFAULT_KV_EVENT_BLOCK_SIZE;
  }

  #fail(message: string): undefined {
    this.#error ??= `${this.#at}.${message}`;
    return undefined;
  }
}

/** The replica id an endpoint stands for: `host:port` for tcp, the path for ipc. */
function replicaIdOf(endpoint: string): string {
  return endpoint.replace(/^(tcp|ipc):\/\//, "");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
