import { type StatsListener, type StatWatcher, unwatchFile, watchFile } from "node:fs";
import { readKvEventSourcesFile } from "./kv-event-sources-file.js";
import type { KvEventStreamLogger } from "./kv-event-stream.js";
import type { KvEventReloadOutcome, KvEventSubscriptions } from "./kv-event-subscriptions.js";

/** Options for {@link createKvEventSourcesReloader}. */
export interface KvEventSourcesReloaderOptions {
  /** The sources file (see `parseKvEventSources`). */
  readonly path: string;
  /** What the file's sources are applied to. */
  readonly subscriptions: Pick<KvEventSubscriptions, "reload">;
  /** Where each reload's outcome, and an invalid file, are logged. */
  readonly logger: KvEventStreamLogger;
  /**
   * How often `watch()` checks the file for a change: of its inode (so that a Kubernetes
   * ConfigMap's symlink swap counts), modification time, or change time (so that a rewrite that
   * keeps the old modification time, as `cp -p` does, counts too).
   * @default 5_000
   */
  readonly watchIntervalMs?: number;
}

/** What one reload did: the file's error (nothing was applied), or what changed. */
export type KvEventSourcesReload =
  | { readonly error: string; readonly outcome?: undefined }
  | { readonly outcome: KvEventReloadOutcome; readonly error?: undefined };

/** Keeps the running engine streams in step with the sources file. */
export interface KvEventSourcesReloader {
  /**
   * Reads the file and applies it. An unreadable or invalid file changes nothing: the streams
   * running keep running, and the error is logged and returned. Reloads run one at a time, in call
   * order; `trigger` (e.g. "SIGHUP") is logged. Never rejects.
   */
  reload(trigger: string): Promise<KvEventSourcesReload>;
  /** Reloads whenever the file changes, until `close()`. */
  watch(): void;
  /** Stops watching; a reload in progress completes. Idempotent. */
  close(): void;
}

/** Creates a {@link KvEventSourcesReloader}; it reads nothing until asked. */
export function createKvEventSourcesReloader(
  options: KvEventSourcesReloaderOptions,
): KvEventSourcesReloader {
  const { path, subscriptions, logger } = options;
  const watchIntervalMs = options.watchIntervalMs ?? 5_000;
  let queue: Promise<unknown> = Promise.resolve();
  let watcher: StatWatcher | undefined;

  const apply = async (trigger: string): Promise<KvEventSourcesReload> => {
    const read = await readKvEventSourcesFile(path);
    if (read.error !== undefined) {
      logger.error(
        { trigger, file: path, error: read.error },
        trigger === "start"
          ? "KV-event sources file is invalid"
          : "KV-event sources file is invalid; the running streams are kept",
      );
      return { error: read.error };
    }
    try {
      const outcome = await subscriptions.reload(read.sources);
      const { failed, ...names } = outcome;
      logger.info({ trigger, file: path, ...names }, "KV-event sources loaded");
      for (const { name, error } of failed) {
        logger.error({ source: name, err: error }, "KV-event stream could not start");
      }
      return { outcome };
    } catch (error) {
      logger.error({ trigger, file: path, err: error }, "KV-event sources could not be applied");
      return { error: String(error) };
    }
  };

  const listener: StatsListener = (current, previous) => {
    const same =
      current.ctimeMs === previous.ctimeMs &&
      current.mtimeMs === previous.mtimeMs &&
      current.ino === previous.ino;
    if (same) return;
    void reloader.reload("file changed");
  };

  const reloader: KvEventSourcesReloader = {
    reload(trigger) {
      const done = queue.then(() => apply(trigger));
      queue = done;
      return done;
    },
    watch() {
      if (watcher !== undefined) return;
      watcher = watchFile(path, { interval: watchIntervalMs, persistent: false }, listener);
    },
    close() {
      if (watcher === undefined) return;
      unwatchFile(path, listener);
      watcher = undefined;
    },
  };
  return reloader;
}
