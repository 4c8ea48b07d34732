import type { ClearReason, KvEventSink } from "../../src/kv-events/kv-event-sink.js";
import type { KvEventSource } from "../../src/kv-events/kv-event-source.js";
import type { KvEventBatch } from "../../src/kv-events/kv-event-types.js";

/** One call a {@link RecordingSink} received. */
export type SinkCall =
  | { readonly op: "apply"; readonly source: string; readonly batch: KvEventBatch }
  | {
      readonly op: "clear";
      readonly source: string;
      readonly rank: number | undefined;
      readonly reason: ClearReason;
    }
  | {
      readonly op: "keepAlive";
      readonly source: string;
      readonly ranks: readonly (number | undefined)[];
      readonly until: number;
    };

/** A sink that records every call, in order, by source name. */
export class RecordingSink implements KvEventSink {
  readonly calls: SinkCall[] = [];

  apply(source: KvEventSource, batch: KvEventBatch): void {
    this.calls.push({ op: "apply", source: source.name, batch });
  }

  clear(source: KvEventSource, rank: number | undefined, reason: ClearReason): void {
    this.calls.push({ op: "clear", source: source.name, rank, reason });
  }

  keepAlive(source: KvEventSource, ranks: readonly (number | undefined)[], until: number): void {
    // A copy: the stream reuses its array.
    this.calls.push({ op: "keepAlive", source: source.name, ranks: [...ranks], until });
  }

  /** The applied batches' timestamps, which tests use to tell batches apart. */
  get appliedTs(): number[] {
    return this.calls.flatMap((call) => (call.op === "apply" ? [call.batch.ts] : []));
  }

  /** Applies and clears, in order, as `apply <ts>` and `clear <rank> <reason>` lines. */
  get log(): string[] {
    return this.calls.flatMap((call) => {
      if (call.op === "apply") return [`apply ${call.batch.ts}`];
      if (call.op === "clear") return [`clear ${call.rank} ${call.reason}`];
      return [];
    });
  }

  get keepAlives(): number {
    return this.calls.filter((call) => call.op === "keepAlive").length;
  }
}
