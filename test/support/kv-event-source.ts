import type { KvEventSource } from "../../src/kv-events/kv-event-source.js";

/**
 * A configured engine source for tests: replica "pod-a" of acme's llama-3-8b, vLLM's default
 * scheme label, 16 tokens per block, no replay endpoint; `overrides` replace any field.
 */
export function kvEventSource(overrides: Partial<KvEventSource> = {}): KvEventSource {
  return {
    name: "pod-a",
    engine: "vllm",
    endpoint: "tcp://10.0.0.7:5557",
    replayEndpoint: undefined,
    topic: "",
    tenant: "acme",
    model: "llama-3-8b",
    hashScheme: "vllm-sha256_cbor-bs16",
    blockSize: 16,
    replicaId: "pod-a",
    replicaIdTemplate: "{replica}/dp{rank}",
    ...overrides,
  };
}
