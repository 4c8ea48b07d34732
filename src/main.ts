/**
 * The composition root: the one place that reads the environment, builds the index, its metrics,
 * the service and both servers, and owns signals. Everything else is injected from here.
 */
import { constants as osConstants } from "node:os";
import { Counter } from "prom-client";
import { CacheIndexService } from "../gen/inferencecache/v1/cache_index_pb.js";
import { type Config, formatAddress, parseConfig } from "./config.js";
import { resolveCacheIndexOptions } from "./core/cache-index-options.js";
import type { Clock } from "./core/clock.js";
import { createCacheIndex } from "./core/create-cache-index.js";
import { createIndexKvEventSink } from "./kv-events/index-kv-event-sink.js";
import { createKvEventSourcesReloader } from "./kv-stream/kv-event-sources-reloader.js";
import { createKvEventSubscriptions } from "./kv-stream/kv-event-subscriptions.js";
import { createLogThrottle } from "./kv-stream/log-throttle.js";
import { createZmqKvEventStream } from "./kv-stream/zmq-kv-event-stream.js";
import { createLogger } from "./logger.js";
import { createIndexMetrics } from "./metrics/index-metrics.js";
import { createInstrumentedIndex } from "./metrics/instrumented-index.js";
import { registerKvEventMetrics } from "./metrics/kv-event-metrics.js";
import { createCacheIndexService } from "./service/cache-index-service.js";
import { createSweeper } from "./sweeper.js";
import { createGrpcServer, routeGrpcJsLogs } from "./transport/grpc-server.js";
import { createHttpServer } from "./transport/http-server.js";
import { createUnexpectedErrorLog } from "./unexpected-error-log.js";

/** Where the process is in its life; readiness and health follow it. */
type Phase = "starting" | "serving" | "draining";

async function main(): Promise<void> {
  const parsed = parseConfig(process.argv.slice(2), process.env);
  if ("help" in parsed) {
    process.stdout.write(`${parsed.help}\n`);
    return;
  }
  if ("error" in parsed) {
    process.stderr.write(`inference-cache-index: ${parsed.error}\n`);
    process.exitCode = 2;
    return;
  }
  const { config } = parsed;
  const logger = createLogger({ level: config.logLevel });
  routeGrpcJsLogs(logger);
  for (const warning of parsed.warnings) logger.warn(warning);

  // performance.now() never steps back with the wall clock, which the TTL and eviction orders need.
  const clock: Clock = performance;
  const indexOptions = resolveCacheIndexOptions({
    clock,
    ttlMs: config.ttlSeconds * 1000,
    maxEntries: config.maxEntries,
    maxReplicas: config.maxReplicas,
    maxChainLength: config.maxChainLength,
    defaultMaxHints: config.defaultMaxHints,
    tierWeights: config.tierWeights,
  });
  for (const warning of indexOptions.warnings) logger.warn(warning);
  const rawIndex = createCacheIndex(indexOptions.options);
  const metrics = createIndexMetrics({ index: rawIndex });
  const index = createInstrumentedIndex(rawIndex, metrics);

  // The engines' KV-event streams feed the instrumented index, so their writes are counted like
  // an adapter's. Streams start with the first reload, before the servers listen.
  // An engine that keeps sending what the index refuses is logged at most once per 10 s.
  const rejections = createLogThrottle({ clock, intervalMs: 10_000 });
  const rejectedBySource = new Map<string, number>();
  const kvEventSink = createIndexKvEventSink({
    index,
    onRejected: (source, error) => {
      rejectedBySource.set(source.name, (rejectedBySource.get(source.name) ?? 0) + 1);
      const suppressed = rejections.admit();
      if (suppressed === undefined) return;
      logger.warn(
        { source: source.name, err: error, suppressed },
        "the index rejected a KV-event batch",
      );
    },
  });
  const livenessWindowMs = config.livenessWindowSeconds * 1000;
  const subscriptions = createKvEventSubscriptions({
    sink: kvEventSink,
    createStream: (source) =>
      createZmqKvEventStream({ source, sink: kvEventSink, clock, livenessWindowMs, logger }),
  });
  registerKvEventMetrics({
    registry: metrics.registry,
    states: () => subscriptions.states(),
    rejections: (name) => rejectedBySource.get(name) ?? 0,
  });
  const sourcesFile = config.kvEventsConfig;
  const reloader =
    sourcesFile === undefined
      ? undefined
      : createKvEventSourcesReloader({ path: sourcesFile, subscriptions, logger });
  // Widened on purpose: signal handlers change it while start-up awaits.
  let phase = "starting" as Phase;
  // SIGTERM and SIGINT are handled from here on. Until the servers exist (the start-up read of the
  // sources file may wait on a slow file system) a signal stops the streams begun and ends the
  // process by the signal; from then on it drains (see stop below). A second signal ends it by the
  // signal at once. Ending by the signal's default action, not process.exit(): exit() waits for
  // libuv's threads, and one stuck reading a file (a hung mount, a FIFO) would keep it waiting.
  const signals = ["SIGTERM", "SIGINT"] as const;
  const endBy = (signal: NodeJS.Signals) => {
    for (const s of signals) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    // Still here: as PID 1 (a container's entry point without an init) the kernel ignores a
    // signal's default action. Exit with the status the signal would have given.
    process.exit(128 + (osConstants.signals[signal] ?? 0));
  };
  let stop: (signal: NodeJS.Signals) => Promise<void> = async (signal) => {
    phase = "draining";
    logger.info({ signal }, "stopped before start-up finished");
    reloader?.close();
    await subscriptions.close();
    endBy(signal);
  };
  for (const signal of signals) {
    process.on(signal, (received) => {
      if (phase === "draining") {
        logger.error({ signal: received }, "a second signal: exiting without finishing the drain");
        endBy(received);
        return;
      }
      stop(received).catch((error: unknown) => {
        logger.fatal({ err: error }, "shutdown failed");
        process.exit(1);
      });
    });
  }
  if (reloader !== undefined) {
    // Installed first, so that a SIGHUP during the start-up read (Node's default would end the
    // process) asks for one more read; the reloader queues it behind the first.
    process.on("SIGHUP", () => void reloader.reload("SIGHUP"));
    // A bad file at start-up is a bad setting: exit 2 before binding anything. Later, a bad file
    // only logs, and the streams running keep running.
    const loaded = await reloader.reload("start");
    if (phase === "draining") return; // a signal came during the read; stop() exits
    if (loaded.error !== undefined) {
      process.stderr.write(`inference-cache-index: --kv-events-config: ${loaded.error}\n`);
      process.exitCode = 2;
      return;
    }
    reloader.watch();
  } else {
    // Node's default for SIGHUP ends the process without draining; a reload signal sent to every
    // sidecar in a fleet must not take down the ones that have nothing to reload.
    process.on("SIGHUP", () =>
      logger.info({ trigger: "SIGHUP" }, "no --kv-events-config to re-read; nothing reloaded"),
    );
  }

  const sweeper = createSweeper({
    index,
    intervalMs: config.sweepIntervalSeconds * 1000,
    onError: (error) => logger.error({ err: error }, "sweep failed; retrying at the next interval"),
  });
  for (const warning of sweeper.warnings) logger.warn(warning);

  const unexpectedErrors = new Counter({
    name: "inferencecache_unexpected_errors_total",
    help: "Errors that escaped a call's handler (bugs: the caller got INTERNAL, or NO_HINT from LookupRoute), by method.",
    labelNames: ["method"],
    registers: [metrics.registry],
  });
  const onUnexpectedError = createUnexpectedErrorLog({
    logger,
    clock,
    intervalMs: 10_000,
    count: (method) => unexpectedErrors.inc({ method }),
  });
  const serviceOptions = {
    index,
    clock,
    isReady: () => phase !== "starting",
    onNotReady: (model: string) => metrics.recordLookup(model, "NOT_READY", false),
    // Fails open: the gateway gets NO_HINT, and the error is counted and logged like any other.
    onLookupFailure: (error: unknown) =>
      onUnexpectedError(error, `${CacheIndexService.typeName}/LookupRoute`),
    engineStreams: () => subscriptions.states(),
  };
  // The gRPC server encodes each response as soon as the service returns it (see
  // createGrpcUnaryAdapter), so its lookups may reuse one response; connect-node's may not.
  const grpcService = createCacheIndexService({ ...serviceOptions, reuseLookupResponses: true });
  const service = createCacheIndexService(serviceOptions);
  const grpcServer = createGrpcServer({
    service: CacheIndexService,
    impl: grpcService,
    host: config.grpcAddress.host,
    port: config.grpcAddress.port,
    maxMessageBytes: config.maxMessageBytes,
    onUnexpectedError,
  });
  const httpServer = createHttpServer({
    service: CacheIndexService,
    impl: service,
    host: config.httpAddress.host,
    port: config.httpAddress.port,
    maxMessageBytes: config.maxMessageBytes,
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    }),
    // Ready does not wait for engines: an unreachable engine costs hints, never lookups.
    readiness: () => ({
      ready: phase === "serving",
      detail: {
        phase,
        index: "in-memory",
        kvEventStreams: subscriptions.states().map((state) => ({
          source: state.source.name,
          endpoint: state.source.endpoint,
          connection: state.connection,
        })),
      },
    }),
    onUnexpectedError,
  });

  // Signals drain from before the servers listen: a signal that arrives while they bind still
  // drains and exits 0.
  const starting = Promise.allSettled([grpcServer.start(), httpServer.start()]);
  stop = async (signal: NodeJS.Signals) => {
    phase = "draining";
    const delayMs = config.shutdownDelaySeconds * 1000;
    const graceMs = config.shutdownGraceSeconds * 1000;
    // Readiness and health go down first, and calls are still served for the delay, so that
    // whoever routes to this sidecar notices before its listeners close.
    grpcServer.setServing(false);
    logger.info({ signal, delayMs, graceMs }, "draining: readiness and health are down");
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await starting; // closing a listener that is still binding would leave it open
    await Promise.all([grpcServer.shutdown(graceMs), httpServer.shutdown(graceMs)]);
    reloader?.close();
    await subscriptions.close();
    sweeper.stop();
    logger.info("stopped");
    // Nothing is left to finish; exit now rather than wait on any handle a library left open.
    process.exit(0);
  };

  const [grpcStarted, httpStarted] = await starting;
  if (grpcStarted.status === "rejected" || httpStarted.status === "rejected") {
    const binds = [
      { port: "grpc", address: config.grpcAddress, started: grpcStarted },
      { port: "http", address: config.httpAddress, started: httpStarted },
    ];
    for (const { port, address, started } of binds) {
      if (started.status === "rejected") {
        const fields = { err: started.reason, port, address: formatAddress(address) };
        logger.fatal(fields, "could not listen");
      }
    }
    // Both binds have settled, so shutting down closes whichever one succeeded.
    await Promise.all([grpcServer.shutdown(0), httpServer.shutdown(0)]);
    process.exit(1);
  }
  const grpcPort = grpcStarted.value.port;
  const httpPort = httpStarted.value.port;
  if (phase === "draining") return; // a signal arrived while the servers were starting
  sweeper.start();
  phase = "serving";
  grpcServer.setServing(true);
  logger.info(
    {
      config: describeConfig(config),
      index: { engine: "compact", ...withoutClock(indexOptions.options) },
      grpc: {
        address: formatAddress({ host: config.grpcAddress.host, port: grpcPort }),
        port: grpcPort,
      },
      http: {
        address: formatAddress({ host: config.httpAddress.host, port: httpPort }),
        port: httpPort,
      },
      node: process.version,
    },
    "inference-cache-index started",
  );
}

/** The effective configuration, as a startup log line shows it. */
function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    grpcAddress: formatAddress(config.grpcAddress),
    httpAddress: formatAddress(config.httpAddress),
  };
}

function withoutClock<T extends { clock: unknown }>(options: T): Omit<T, "clock"> {
  const { clock: _clock, ...rest } = options;
  return rest;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `inference-cache-index: fatal: ${String(error instanceof Error ? error.stack : error)}\n`,
  );
  process.exit(1);
});
