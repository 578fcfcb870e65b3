"""`appserver attach`: stdio JSON lines ⇄ JSON lines on the control socket.

A JSON-lines client (the openai-codex SDK, a script) can share a running server this way. When
stdin ends, attach waits until every request it forwarded has been answered, then ends its side
of the connection and exits 0 once the server has closed it. When the server closes the
connection, attach closes stdout and exits: 0, or 1 if requests it forwarded were left
unanswered.

Joining a running server is the common case and must start fast, so this is a lean relay: the
control socket takes JSON lines as well as WebSockets (`appserver.transport.control`), so attach
needs no WebSocket client, only a plain socket, `selectors` and `json` to follow request ids; no
trio and nothing of the server. Only `--start`, when nothing answers yet, imports the trio
launcher (`appserver.relay.start`). Attach therefore joins appserver's control socket, not
Codex's (whose socket speaks WebSocket only: use `proxy` there).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
from pathlib import Path
from typing import Final

from appserver.relay.proxy import connect_error, release_stdout
from appserver.wire.ids import RequestId, is_request_id
from appserver.wire.limits import MAX_MESSAGE_BYTES

READ_CHUNK: Final = 64 * 1024
#: After we end our side, how long the server gets to close the connection.
CLOSE_TIMEOUT: Final = 5.0


def _request_id(line: bytes | str) -> RequestId | None:
    """The id of a request line (something the server will answer), else None."""
    try:
        value = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if type(value) is dict and type(value.get("method")) is str and is_request_id(value.get("id")):
        request_id: RequestId = value["id"]
        return request_id
    return None


def _answered_id(frame: bytes) -> RequestId | None:
    if frame.startswith(b'{"method"'):  # a notification (most lines): not worth parsing
        return None
    try:
        value = json.loads(frame)
    except ValueError:
        return None
    if type(value) is dict and "method" not in value and is_request_id(value.get("id")):
        answered: RequestId = value["id"]
        return answered
    return None


def _probe(path: Path) -> bool:
    """Something accepts connections at `path` (the one check made before connecting)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(os.fspath(path))
        except OSError:
            return False
        return True


class Lines:
    """JSON lines from stdin: `\\n`-terminated (a `\\r` before it is dropped), the last one
    possibly unterminated; a line over `MAX_MESSAGE_BYTES` ends the input (`oversized`)."""

    def __init__(self, max_line: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self._max_line = max_line
        self.oversized = False

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        lines = []
        start = 0
        while (end := buffer.find(b"\n", self._scanned)) >= 0:
            line = bytes(buffer[start:end])
            lines.append(line[:-1] if line.endswith(b"\r") else line)
            start = self._scanned = end + 1
        del buffer[:start]
        self._scanned = len(buffer)
        limit = self._max_line
        if len(buffer) > limit or any(len(x) > limit for x in lines):
            self.oversized = True
            return [x for x in lines if len(x) <= limit]
        return lines

    def end(self) -> list[bytes]:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [rest] if rest else []


class Relay:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.outstanding: set[tuple[type, RequestId]] = set()
        self.input_done = False
        self.close_sent = False
        #: The connection is over (the server closed it, or stdout is gone).
        self.server_gone = False
        #: The server's lines are not ours to limit.
        self._replies = Lines(max_line=sys.maxsize)

    def forward_lines(self, lines: list[bytes]) -> None:
        payload = []
        for line in lines:
            if not line.strip():
                continue
            request_id = _request_id(line)
            if request_id is not None:
                self.outstanding.add((type(request_id), request_id))
            payload.append(line)
        if payload:
            self._send(b"\n".join(payload) + b"\n")

    def finish_input(self, oversized: bool) -> None:
        if oversized:
            limit = MAX_MESSAGE_BYTES
            print(f"Error: a stdin line exceeds {limit} bytes; closing", file=sys.stderr)
            self.outstanding.clear()
        self.input_done = True
        self.close_if_answered()

    def close_if_answered(self) -> None:
        if self.input_done and not self.outstanding and not self.close_sent:
            self.close_sent = True
            try:
                self.sock.shutdown(socket.SHUT_WR)  # the server's end of input: it closes
            except OSError:
                self.server_gone = True

    def _send(self, data: bytes) -> None:
        if self.server_gone:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.server_gone = True

    def receive(self, data: bytes) -> None:
        """Bytes from the server: whole lines go to stdout as they come."""
        lines = self._replies.feed(data) if data else self._replies.end()
        if lines:
            try:
                _write_all(1, b"\n".join(lines) + b"\n")
            except OSError:  # whoever reads our stdout is gone
                self.server_gone = True
                return
            for line in lines:
                answered = _answered_id(line)
                if answered is not None:
                    self.outstanding.discard((type(answered), answered))
            self.close_if_answered()
        if not data:
            self.server_gone = True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay(sock: socket.socket) -> int:
    stdin = os.dup(0)
    relay = Relay(sock)
    lines = Lines()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        selector.register(stdin, selectors.EVENT_READ)
        stdin_selectable = True
    except PermissionError:  # a regular file or /dev/null: always readable, epoll refuses it
        stdin_selectable = False
    reading_stdin = True
    while not relay.server_gone:
        if reading_stdin and not stdin_selectable:
            timeout: float | None = 0
        else:
            timeout = CLOSE_TIMEOUT if relay.close_sent else None
        ready = [key.fd for key, _ in selector.select(timeout)]
        if relay.close_sent and not ready:
            break  # the server did not close the connection after our end of input
        if sock.fileno() in ready:
            try:
                data = sock.recv(READ_CHUNK)
            except OSError:
                data = b""
            relay.receive(data)
        if reading_stdin and (stdin in ready or not stdin_selectable):
            data = os.read(stdin, READ_CHUNK)
            relay.forward_lines(lines.feed(data) if data else lines.end())
            if not data or lines.oversized:
                reading_stdin = False
                if stdin_selectable:
                    selector.unregister(stdin)
                relay.finish_input(lines.oversized)
    selector.close()
    release_stdout()
    if relay.outstanding:
        print(
            f"Error: the server closed the connection with {len(relay.outstanding)} request(s) "
            "unanswered",
            file=sys.stderr,
        )
        return 1
    return 0


def attach(
    path: Path,
    *,
    start: bool = False,
    home: Path | None = None,
    server_args: list[str] | None = None,
) -> int:
    """Relay stdio to the server at `path`; with `start`, launch one first if none answers
    (`server_args`: its serve flags, None for the recorded ones)."""
    if start and not _probe(path):
        from appserver.relay.start import start as start_server

        assert home is not None
        error = start_server(path, home, server_args)
        if error is not None:
            print(f"Error: {error}", file=sys.stderr)
            return 1
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fspath(path))
    except OSError as exc:
        sock.close()
        print(f"Error: {connect_error(path, exc)}", file=sys.stderr)
        return 1
    with sock:
        return relay(sock)
