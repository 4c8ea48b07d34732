import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The compiled entry point; `test/global-setup.ts` builds it before any test runs. */
export const MAIN_SCRIPT = fileURLToPath(new URL("../../dist/src/main.js", import.meta.url));

/** A sidecar process a test started, with what it logged. */
export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  /** Every JSON line logged so far. */
  readonly logs: Record<string, unknown>[];
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs the sidecar to completion (for `--help` and bad configuration) and returns what it printed. */
export function runSidecar(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN_SCRIPT, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Starts the sidecar on loopback with ephemeral ports and resolves once it has logged its startup
 * line. The caller stops it (by its own PID) with `stop()`. Shutdown skips the drain delay unless
 * `args` sets `--shutdown-delay-seconds` (a later flag wins).
 */
export function startSidecar(
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<SidecarProcess> {
  const child = spawn(
    process.execPath,
    [
      MAIN_SCRIPT,
      ...["--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"],
      ...["--shutdown-delay-seconds", "0"],
      ...args,
    ],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    let buffered = "";
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const record = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>;
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
        logs.push(record);
        const grpc = record.grpc as { port: number } | undefined;
        const http = record.http as { port: number } | undefined;
        if (grpc && http) {
          resolve({
            child,
            grpcAddress: `127.0.0.1:${grpc.port}`,
            httpUrl: `http://127.0.0.1:${http.port}`,
            logs,
            stop: (signal = "SIGTERM") => {
              if (child.exitCode === null) child.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    exited.then((code) =>
      reject(new Error(`the sidecar exited with ${code} before starting: ${stderr}`)),
    );
  });
}
