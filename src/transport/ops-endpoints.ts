import type { IncomingMessage, ServerResponse } from "node:http";
import type { UnexpectedErrorHandler } from "./public-error.js";

/** A metrics exposition, e.g. prom-client's `registry.contentType` and `await registry.metrics()`. */
export interface MetricsExposition {
  contentType: string;
  body: string;
}

/** Whether the process should receive traffic, and why; `detail` is shown to whoever asks. */
export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

/** What `createOpsEndpoints()` serves. */
export interface OpsEndpointsOptions {
  /** Produces the body of `GET /metrics`. */
  metrics: () => Promise<MetricsExposition>;
  /** Decides the answer of `GET /readyz`. Called on every request, so it should be cheap. */
  readiness: () => Readiness;
  /** Told when `metrics` or `readiness` fails, with the endpoint, e.g. "GET /metrics". */
  onUnexpectedError: UnexpectedErrorHandler;
}

/**
 * Creates the operator endpoints of the HTTP server, as a node:http request handler:
 *
 * - `GET /metrics`: whatever `metrics()` produces, with its content type; 500 when it fails.
 * - `GET /healthz`: 200 `ok` whenever the process can answer at all (liveness).
 * - `GET /readyz`: 200 when `readiness()` says ready, else 503; the body is JSON
 *   `{ "ready": boolean, ...detail }`.
 * - any other method on these paths: 405; any other path: 404.
 *
 * HEAD is answered like GET, without a body. The query string is ignored.
 */
export function createOpsEndpoints(
  options: OpsEndpointsOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  const { metrics, readiness, onUnexpectedError } = options;
  return (request, response) => {
    const path = (request.url ?? "/").split("?", 1)[0];
    if (path !== "/metrics" && path !== "/healthz" && path !== "/readyz") {
      send(response, 404, "text/plain; charset=utf-8", "not found");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("allow", "GET, HEAD");
      send(response, 405, "text/plain; charset=utf-8", "method not allowed");
      return;
    }
    if (path === "/healthz") {
      send(response, 200, "text/plain; charset=utf-8", "ok");
      return;
    }
    if (path === "/readyz") {
      try {
        const { ready, detail } = readiness();
        const body = JSON.stringify({ ready, ...detail });
        send(response, ready ? 200 : 503, "application/json", body);
      } catch (error) {
        onUnexpectedError(error, "GET /readyz");
        send(response, 500, "text/plain; charset=utf-8", "readiness check failed");
      }
      return;
    }
    serveMetrics(metrics, response).catch((error: unknown) => {
      onUnexpectedError(error, "GET /metrics");
      if (response.headersSent) {
        response.destroy();
      } else {
        send(response, 500, "text/plain; charset=utf-8", "metrics are unavailable");
      }
    });
  };
}

/** Rejects, instead of throwing, whatever goes wrong: `metrics()` itself, or a bad content type. */
async function serveMetrics(
  metrics: () => Promise<MetricsExposition>,
  response: ServerResponse,
): Promise<void> {
  const exposition = await metrics();
  send(response, 200, exposition.contentType, exposition.body);
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
  });
  // node:http drops the body of a response to HEAD by itself.
  response.end(body);
}
