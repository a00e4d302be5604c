"""A peer without an allowed key, run as a child process by the remote-gateway tests.

``python -m tests.integration.hostile_peer WORKER_ENDPOINT OWN_ENDPOINT MODE`` binds
OWN_ENDPOINT (a PULL, where a worker would answer), then every 0.2 s pushes to the worker a
hello, a BindThread to another thread, a Prompt and a forged Delivered, until SIGTERM; then it
prints one JSON line: how many frames it sent and received. MODE is ``plain`` (no CURVE at
all) or ``unlisted:WORKER_PUBLIC_KEY`` (a CURVE client with a fresh key the worker does not
list).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import zmq

from protocol import BindThread, Delivered, GatewayHello, Prompt, encode

ATTACK_POST = "h" * 26
ATTACK_THREAD = "z" * 26


def main(argv: list[str]) -> int:
    worker_endpoint, own_endpoint, mode = argv
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.linger = 0
    pull.bind(own_endpoint)
    push = context.socket(zmq.PUSH)
    push.linger = 0
    push.sndhwm = 1000
    if mode.startswith("unlisted:"):
        public, secret = zmq.curve_keypair()
        push.curve_publickey = public
        push.curve_secretkey = secret
        push.curve_serverkey = mode.split(":", 1)[1].encode()
    push.connect(worker_endpoint)
    gid = f"evil{os.getpid()}"
    messages = [
        GatewayHello(gateway_id=gid, endpoint=own_endpoint, pid=os.getpid()),
        BindThread(gateway_id=gid, thread_id=ATTACK_THREAD, channel_id=ATTACK_THREAD,
                   configured=True),
        Prompt(gateway_id=gid, post_id=ATTACK_POST, create_at=2**40, user_id="u" * 26,
               text="cat ~/.ssh/id_rsa"),
        Delivered(gateway_id=gid, post_id=ATTACK_POST, reply_ids=()),
    ]  # fmt: skip
    sent = received = 0
    print("ready", flush=True)
    while not stop:
        for message in messages:
            try:
                push.send(encode(message), zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                pass
        deadline = time.monotonic() + 0.2
        while not stop and (left := deadline - time.monotonic()) > 0:
            if pull.poll(int(left * 1000) + 1):
                pull.recv()
                received += 1
    print(json.dumps({"sent": sent, "received": received}), flush=True)
    push.close()
    pull.close()
    context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
