import type { KvEventStreamLogger } from "../../src/kv-stream/kv-event-stream.js";

/** A logger that keeps every line, for assertions on what an operator would read. */
export class RecordingLogger implements KvEventStreamLogger {
  readonly lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];

  info(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: "info", message, fields });
  }

  warn(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: "warn", message, fields });
  }

  error(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: "error", message, fields });
  }
}
