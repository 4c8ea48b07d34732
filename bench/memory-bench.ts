import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { MemoryWorkload } from "./memory-probe.js";

/** What one memory workload measured (see memory-probe.ts). */
export interface MemoryResult {
  readonly workload: MemoryWorkload;
  readonly holderBlocks: number;
  readonly blocks: number;
  readonly replicas: number;
  readonly fillSeconds: number;
  /** Heap + array buffers after GC, minus the empty index's, per holder-block. */
  readonly bytesPerHolderBlock: number;
  /** The part of it in typed arrays (the rest is JS heap: replicas, scopes, hot-block maps). */
  readonly arrayBytesPerHolderBlock: number;
  /** What stays allocated once every replica is cleared (pages kept for reuse). */
  readonly retainedAfterClearBytes: number;
  /** The same figure after clearing and filling again: equal to the first when memory is reused. */
  readonly refillBytesPerHolderBlock: number;
}

/**
 * Measures bytes per holder-block for each workload, each in a fresh process with `--expose-gc`, so
 * no other benchmark's garbage is counted.
 */
export function runMemoryBenchmark(
  workloads: readonly MemoryWorkload[],
  holderBlocks: number,
): MemoryResult[] {
  const probe = fileURLToPath(new URL("./memory-probe.js", import.meta.url));
  return workloads.map((workload) => {
    const output = execFileSync(
      process.execPath,
      ["--expose-gc", "--max-old-space-size=8192", probe, workload, String(holderBlocks)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
    );
    return JSON.parse(output.trim().split("\n").at(-1) as string) as MemoryResult;
  });
}
