"""An independent KV-event publisher: Debian's python3-zmq and python3-msgpack sending what a vLLM
engine sends (docs/vllm-kv-events.md), in the current layout: each event a msgpack map tagged by
"type", the batch [ts, events, data_parallel_rank], every message the 3 frames [topic, seq (8 bytes
big-endian), payload]. No JavaScript is involved in producing the bytes.

It binds an XPUB on a loopback ephemeral port (on the wire an XPUB is a PUB; it also reports the
subscriber's subscription, so the batches are not sent before anyone listens), prints
{"endpoint": ...} as one JSON line, waits for a subscription, publishes the batches, prints
{"sent": N}, and then idles until stdin closes or it is killed.

Usage: kv_events_publisher.py TOPIC
"""
import json
import struct
import sys

import msgpack
import zmq

TOPIC = sys.argv[1] if len(sys.argv) > 1 else ""
RANK = 1


def block_stored(hashes, parent, tokens, medium=None, lora_name=None):
    event = {"type": "BlockStored", "block_hashes": hashes, "parent_block_hash": parent,
             "token_ids": tokens, "block_size": 16}
    # Fields with default values may be omitted in the current layout.
    if medium is not None:
        event["medium"] = medium
    if lora_name is not None:
        event["lora_name"] = lora_name
    return event


BATCHES = [
    # Integer hashes: a small one, one past 2^53, and the largest uint64 (msgpack 0xcf).
    [1767225600.25, [block_stored([1, 2**53 + 1, 2**64 - 1], None, list(range(48)))], RANK],
    # An offload to CPU: no token ids.
    [1767225600.5, [block_stored([2**64 - 1], None, [], medium="CPU")], RANK],
    # A removal, an event type this sidecar does not know (skipped), and a clear.
    [1767225600.75, [{"type": "BlockRemoved", "block_hashes": [1], "medium": "GPU"},
                     {"type": "BlockMovedToMars", "block_hashes": [7]},
                     {"type": "AllBlocksCleared"}], RANK],
    # Integer hashes off: full 32-byte digests as bin, under a LoRA adapter.
    [1767225601.0, [block_stored([bytes(range(32))], None, list(range(16)), lora_name="sql-lora")], RANK],
]


def main():
    context = zmq.Context()
    publisher = context.socket(zmq.XPUB)
    publisher.setsockopt(zmq.LINGER, 1000)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    print(json.dumps({"endpoint": f"tcp://127.0.0.1:{port}"}), flush=True)

    if publisher.poll(10_000) == 0:
        print(json.dumps({"error": "no subscriber within 10 s"}), flush=True)
        return 1
    publisher.recv()  # b"\x01" + the subscribed topic

    for seq, batch in enumerate(BATCHES):
        payload = msgpack.packb(batch, use_bin_type=True)
        publisher.send_multipart([TOPIC.encode(), struct.pack(">Q", seq), payload])
    print(json.dumps({"sent": len(BATCHES)}), flush=True)

    sys.stdin.read()  # until the test closes stdin or kills this process
    publisher.close()
    context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
