/**
 * Ordering of one replica's batches: the decision a stream takes for each incoming `seq`, given the
 * seq of the last batch it applied for the same (source, data-parallel rank). Pure: the state is
 * that one number, kept by the caller, which commits a batch's seq once it has applied it.
 *
 * An engine numbers its batches 0, 1, 2, ... from its start (docs/vllm-kv-events.md), so:
 *
 * | last applied | incoming seq    | live stream              | replayed batch           |
 * |--------------|-----------------|--------------------------|--------------------------|
 * | none         | any             | apply (the baseline)     | apply (the baseline)     |
 * | n            | n + 1           | apply                    | apply                    |
 * | n            | > n + 1         | gap from n + 1           | gap from n + 1           |
 * | n            | <= n            | restart                  | skip (already applied)   |
 *
 * The first batch after a stream starts is taken as the baseline whatever its seq: what the engine
 * did before the sidecar subscribed is unknown, and cannot be asked for (engines keep no snapshot).
 * A live PUB socket never repeats a message, so on the live stream a seq that does not move forward
 * means a new engine process counting from 0 again; a replay, by contrast, starts at or before what
 * was applied, and its first batches are skipped.
 */

/** Where a batch comes from: the live PUB stream, or the engine's replay buffer. */
export type SeqOrigin = "live" | "replay";

/** What to do with an incoming batch. */
export type SeqDecision =
  /** Apply it, then commit its seq. */
  | { readonly action: "apply" }
  /** Already applied (replay only): drop it. */
  | { readonly action: "skip" }
  /** Batches `firstMissing` .. seq - 1 are missing: recover them before this one, or clear. */
  | { readonly action: "gap"; readonly firstMissing: bigint }
  /** The engine restarted (live only): forget the replica, then apply this batch as the baseline. */
  | { readonly action: "restart" };

const APPLY: SeqDecision = Object.freeze({ action: "apply" });
const SKIP: SeqDecision = Object.freeze({ action: "skip" });
const RESTART: SeqDecision = Object.freeze({ action: "restart" });

/**
 * Decides what to do with a batch numbered `seq` when `lastApplied` (undefined before the first) is
 * the seq last applied for its replica; see the table above. O(1); allocates only for a gap.
 */
export function decideSeq(
  lastApplied: bigint | undefined,
  seq: bigint,
  origin: SeqOrigin,
): SeqDecision {
  if (lastApplied === undefined) return APPLY;
  const expected = lastApplied + 1n;
  if (seq === expected) return APPLY;
  if (seq > expected) return { action: "gap", firstMissing: expected };
  return origin === "live" ? RESTART : SKIP;
}
