"""What the trust boundary costs on the wire: the decoder's bounds (protocol.limits) and CURVE.

1. Decoding a typical ``Prompt`` frame with the bounded Structs against an unbounded copy of
   the same fields (ns per decode).
2. A ping-pong over loopback tcp, plain against CURVE (median and p99 round trip, µs), and how
   long a CURVE connection takes to carry its first message (handshake + ZAP).

    python -m benchmarks.wire_security [--rounds 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import msgspec
import zmq

from protocol import Prompt, encode, worker_codec


class _PlainPrompt(msgspec.Struct, frozen=True, kw_only=True, tag="Prompt", tag_field="type"):
    gateway_id: str
    post_id: str
    create_at: int
    user_id: str
    text: str
    username: str = ""


def decode_cost(n: int = 200_000) -> dict[str, float]:
    frame = encode(
        Prompt(
            gateway_id="g0123456789",
            post_id="a" * 26,
            create_at=1_760_000_000_000,
            user_id="b" * 26,
            text="please run the tests and tell me what fails " * 4,
            username="alice",
        )
    )
    plain = msgspec.msgpack.Decoder(_PlainPrompt)
    out = {}
    for name, decode in (("bounded", worker_codec.decode), ("unbounded", plain.decode)):
        decode(frame)
        start = time.perf_counter_ns()
        for _ in range(n):
            decode(frame)
        out[name] = (time.perf_counter_ns() - start) / n
    return out


def _pair(ctx: zmq.Context[Any], curve: bool, port: int) -> tuple[zmq.Socket[Any], ...]:
    server_pub, server_sec = zmq.curve_keypair()
    client_pub, client_sec = zmq.curve_keypair()
    a_pull, b_pull = ctx.socket(zmq.PULL), ctx.socket(zmq.PULL)
    a_push, b_push = ctx.socket(zmq.PUSH), ctx.socket(zmq.PUSH)
    for server in (a_pull, b_pull) if curve else ():
        server.curve_secretkey, server.curve_publickey, server.curve_server = (
            server_sec, server_pub, True,
        )  # fmt: skip
    for client in (a_push, b_push) if curve else ():
        client.curve_secretkey, client.curve_publickey = client_sec, client_pub
        client.curve_serverkey = server_pub
    a_pull.bind(f"tcp://127.0.0.1:{port}")
    b_pull.bind(f"tcp://127.0.0.1:{port + 1}")
    a_push.connect(f"tcp://127.0.0.1:{port + 1}")
    b_push.connect(f"tcp://127.0.0.1:{port}")
    return a_pull, b_pull, a_push, b_push


def ping_pong(curve: bool, rounds: int, port: int) -> dict[str, float]:
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        a_pull, b_pull, a_push, b_push = _pair(ctx, curve, port)
        frame = b"x" * 300
        start = time.perf_counter()
        a_push.send(frame)
        b_pull.recv()
        first_ms = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            a_push.send(frame)
            b_push.send(b_pull.recv())
            a_pull.recv()
            times.append((time.perf_counter_ns() - t0) / 1000)
        for s in (a_pull, b_pull, a_push, b_push):
            s.close(linger=0)
        times.sort()
        return {
            "first_message_ms": round(first_ms, 2),
            "rtt_median_us": round(statistics.median(times), 1),
            "rtt_p99_us": round(times[int(len(times) * 0.99)], 1),
        }
    finally:
        ctx.term()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--port", type=int, default=47810)
    args = parser.parse_args()
    cost = decode_cost()
    print(
        f"decode Prompt: bounded {cost['bounded']:.0f} ns, unbounded {cost['unbounded']:.0f} ns "
        f"(+{cost['bounded'] - cost['unbounded']:.0f} ns per frame)"
    )
    for curve in (False, True):
        result = ping_pong(curve, args.rounds, args.port + (2 if curve else 0))
        label = "CURVE" if curve else "plain"
        print(
            f"tcp loopback {label:5}: first message {result['first_message_ms']} ms, "
            f"round trip median {result['rtt_median_us']} µs, p99 {result['rtt_p99_us']} µs"
        )


if __name__ == "__main__":
    main()
