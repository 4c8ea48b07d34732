/**
 * One engine's KV-event stream, as configured: where to subscribe and what its events mean to the
 * index. Resolved (every default applied) by the configuration loader.
 */
export interface KvEventSource {
  /** Unique among the configured sources; names the source in logs, metrics and state. */
  readonly name: string;
  /** Which engine publishes: the wire format is shared, the hash scheme is not. */
  readonly engine: "vllm" | "sglang";
  /** The engine's PUB socket, e.g. `tcp://10.0.0.7:5557`. The sidecar connects to it. */
  readonly endpoint: string;
  /** The engine's replay ROUTER socket, e.g. `tcp://10.0.0.7:5558`; undefined when it has none. */
  readonly replayEndpoint: string | undefined;
  /** The topic subscribed to; "" subscribes to every message. */
  readonly topic: string;
  readonly tenant: string;
  /** The base model; blocks of a LoRA adapter are indexed under the adapter's name instead. */
  readonly model: string;
  /** The label gateways use for this engine's block hashes (algorithm, seed, block size). */
  readonly hashScheme: string;
  /** Tokens per block, used when an event does not say. */
  readonly blockSize: number;
  /** The replica's id in the index before the data-parallel rank is applied. */
  readonly replicaId: string;
  /**
   * How a data-parallel rank becomes part of the replica id: `{replica}` and `{rank}` are replaced.
   * Batches without a rank use `replicaId` as is.
   * @default "{replica}/dp{rank}"
   */
  readonly replicaIdTemplate: string;
}

/** The replica id a batch from `source` with data-parallel rank `rank` is indexed under. */
export function replicaIdFor(source: KvEventSource, rank: number | undefined): string {
  if (rank === undefined) return source.replicaId;
  return source.replicaIdTemplate
    .replaceAll("{replica}", source.replicaId)
    .replaceAll("{rank}", String(rank));
}
