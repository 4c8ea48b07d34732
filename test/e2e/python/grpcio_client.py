"""An independent gRPC client: Debian's python3-grpcio with protobuf encoded by hand (no generated
code, no JavaScript). It reports a chain, looks it up, checks health and provokes INVALID_ARGUMENT,
then prints what it saw as one JSON object for the test to assert on.

Usage: grpcio_client.py HOST:PORT
"""
import json
import struct
import sys

import grpc

SERVICE = "/inferencecache.v1.CacheIndexService/"


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_string(number, text):
    return field_bytes(number, text.encode("utf-8"))


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def parse(buf):
    """Decodes one message level into {field number: [values]}; length-delimited values stay bytes."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 1:
            value, i = struct.unpack("<d", buf[i : i + 8])[0], i + 8
        elif wire == 2:
            length, i = read_varint(buf, i)
            value, i = bytes(buf[i : i + length]), i + length
        else:
            raise ValueError("unexpected wire type %d" % wire)
        fields.setdefault(number, []).append(value)
    return fields


def read_varint(buf, i):
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def block(n):
    return struct.pack(">Q", n)


def main():
    channel = grpc.insecure_channel(sys.argv[1])
    call = lambda method: channel.unary_unary(SERVICE + method)
    scope = field_string(1, "py-tenant") + field_string(2, "py-model")
    scheme = field_string(4, "vllm-sha256_cbor-bs16")

    prefixes = b"".join(
        field_bytes(5, field_bytes(1, block(n)) + field_varint(2, 16 * n)) for n in (1, 2, 3)
    )
    report = scope + field_string(3, "py-replica") + scheme + prefixes
    reported = parse(call("ReportCacheState")(report, timeout=10))

    lookup = scope + field_string(3, "vllm-sha256_cbor-bs16")
    lookup += b"".join(field_bytes(4, block(n)) for n in (1, 2, 3, 4))
    answer = parse(call("LookupRoute")(lookup, timeout=10))
    hints = [parse(h) for h in answer.get(1, [])]

    health = parse(channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10))

    try:
        call("ReportCacheState")(field_string(2, "py-model") + field_string(3, "r"), timeout=10)
        invalid = None
    except grpc.RpcError as error:
        invalid = {"code": error.code().name, "details": error.details()}

    print(
        json.dumps(
            {
                "accepted": reported.get(1, [0])[0],
                "reasonCode": answer.get(2, [0])[0],
                "hints": [
                    {
                        "replicaId": h[1][0].decode(),
                        "matchedBlocks": h.get(2, [0])[0],
                        "matchedTokens": h.get(3, [0])[0],
                    }
                    for h in hints
                ],
                "health": health.get(1, [0])[0],
                "invalid": invalid,
            }
        )
    )


if __name__ == "__main__":
    main()
