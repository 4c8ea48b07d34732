import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SidecarProcess, startSidecar } from "../support/sidecar-process.js";

const CLIENT = fileURLToPath(new URL("python/grpcio_client.py", import.meta.url));

// Debian's python3-grpcio, installed by `make test` (system-deps): an HTTP/2 and gRPC stack that shares no code
// with the server, talking to it with protobuf encoded by hand.
describe("an independent client (python3-grpcio)", () => {
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    sidecar = await startSidecar();
  });

  afterAll(async () => {
    await sidecar?.stop();
  });

  it("reports, looks up, checks health and gets INVALID_ARGUMENT for a missing tenant", async () => {
    const { stdout } = await promisify(execFile)(
      "/usr/bin/python3",
      [CLIENT, sidecar.grpcAddress],
      {
        timeout: 30_000,
      },
    );
    expect(JSON.parse(stdout)).toEqual({
      accepted: 3,
      reasonCode: 1, // REASON_CODE_PREFIX_MATCH
      hints: [{ replicaId: "py-replica", matchedBlocks: 3, matchedTokens: 48 }],
      health: 1, // SERVING
      invalid: { code: "INVALID_ARGUMENT", details: "tenant is required" },
    });
  });
});
