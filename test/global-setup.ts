import { execFileSync } from "node:child_process";

/** Compiles the sidecar once, so the end-to-end tests run the same JavaScript `make run` does. */
export default function setup(): void {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], {
    stdio: "inherit",
  });
}
