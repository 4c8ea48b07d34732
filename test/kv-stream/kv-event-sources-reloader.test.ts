import { utimesSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KvEventSource } from "../../src/kv-events/kv-event-source.js";
import {
  createKvEventSourcesReloader,
  type KvEventSourcesReloader,
} from "../../src/kv-stream/kv-event-sources-reloader.js";
import type { KvEventReloadOutcome } from "../../src/kv-stream/kv-event-subscriptions.js";
import { waitFor } from "../support/wait-for.js";
import { RecordingLogger } from "./recording-logger.js";

const scope = { tenant: "acme", model: "llama-3-8b", hashScheme: "vllm-sha256_cbor-bs16" };
const fileWith = (...endpoints: string[]) =>
  JSON.stringify({ sources: endpoints.map((endpoint) => ({ ...scope, endpoint })) });

/** Subscriptions that record the source names of every reload. */
class RecordingSubscriptions {
  readonly reloads: string[][] = [];
  async reload(sources: readonly KvEventSource[]): Promise<KvEventReloadOutcome> {
    this.reloads.push(sources.map((source) => source.name));
    return { added: [], changed: [], removed: [], unchanged: [], failed: [] };
  }
}

describe("createKvEventSourcesReloader()", () => {
  let dir: string;
  let file: string;
  let reloader: KvEventSourcesReloader | undefined;
  let subscriptions: RecordingSubscriptions;
  let logger: RecordingLogger;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kv-reloader-"));
    file = join(dir, "engines.json");
    subscriptions = new RecordingSubscriptions();
    logger = new RecordingLogger();
  });

  afterEach(async () => {
    reloader?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function create() {
    reloader = createKvEventSourcesReloader({
      path: file,
      subscriptions,
      logger,
      watchIntervalMs: 20,
    });
    return reloader;
  }

  it("applies the file's sources and logs what changed", async () => {
    await writeFile(file, fileWith("tcp://10.0.0.1:5557", "tcp://10.0.0.2:5557"));
    expect(await create().reload("start")).toEqual({
      outcome: { added: [], changed: [], removed: [], unchanged: [], failed: [] },
    });
    expect(subscriptions.reloads).toEqual([["10.0.0.1:5557", "10.0.0.2:5557"]]);
    expect(logger.lines).toMatchObject([
      { level: "info", message: "KV-event sources loaded", fields: { trigger: "start", file } },
    ]);
  });

  it("changes nothing and logs an error when the file is invalid", async () => {
    await writeFile(file, fileWith("tcp://*:5557"));
    const result = await create().reload("SIGHUP");
    expect(result.error).toMatch(/sources\[0\]\.endpoint must be tcp:\/\/host:port/);
    expect(subscriptions.reloads).toEqual([]);
    expect(logger.lines).toMatchObject([
      {
        level: "error",
        message: "KV-event sources file is invalid; the running streams are kept",
        fields: { trigger: "SIGHUP", error: result.error },
      },
    ]);
  });

  it("does not speak of running streams when the file is invalid at start-up", async () => {
    await writeFile(file, fileWith("tcp://*:5557"));
    await create().reload("start");
    expect(logger.lines).toMatchObject([
      { level: "error", message: "KV-event sources file is invalid", fields: { trigger: "start" } },
    ]);
  });

  it("reloads when the watched file changes, until closed", async () => {
    await writeFile(file, fileWith("tcp://10.0.0.1:5557"));
    const watching = create();
    await watching.reload("start");
    watching.watch();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the watcher's first stat
    await writeFile(file, fileWith("tcp://10.0.0.3:5557"));
    await waitFor(() => subscriptions.reloads.length === 2, "the reload on change");
    expect(subscriptions.reloads[1]).toEqual(["10.0.0.3:5557"]);
    expect(logger.lines[1]?.fields.trigger).toBe("file changed");

    watching.close();
    await writeFile(file, fileWith("tcp://10.0.0.4:5557"));
    await new Promise((resolve) => setTimeout(resolve, 100)); // five watch periods
    expect(subscriptions.reloads).toHaveLength(2);
  });

  it("reloads when the file is rewritten in place with its old modification time kept", async () => {
    // As `cp -p` or `rsync -t` do: only the change time (which no one can set) tells.
    await writeFile(file, fileWith("tcp://10.0.0.1:5557"));
    const mtime = 1_700_000_000; // whole seconds, so that setting it again restores it exactly
    utimesSync(file, mtime, mtime);
    const watching = create();
    await watching.reload("start");
    watching.watch();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the watcher's first stat
    // Back to back. A watcher's stat landing between the two would see a new modification time and
    // pass without the change time; it cannot make the test fail.
    writeFileSync(file, fileWith("tcp://10.0.0.2:5557"));
    utimesSync(file, mtime, mtime);
    await waitFor(() => subscriptions.reloads.length === 2, "the reload on change");
    expect(subscriptions.reloads[1]).toEqual(["10.0.0.2:5557"]);
  });
});
