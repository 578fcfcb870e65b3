"""`appserver attach`: stdio JSON lines ⇄ WebSocket text frames on the control socket.

A JSON-lines client (the openai-codex SDK, a script) can share a running server this way. When
stdin ends, attach waits until every request it forwarded has been answered, then closes the
WebSocket and exits 0. When the server closes the connection, attach closes stdout and exits:
0, or 1 if requests it forwarded were left unanswered.

Joining a running server is the common case and must start fast, so this is a lean relay:
wsproto (sans-io) over a plain socket, `selectors` for waiting, no trio and nothing of the
server. Only `--start`, when nothing answers yet, imports the trio launcher
(`appserver.relay.start`).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
from pathlib import Path
from typing import Final

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import ProtocolError

from appserver.relay.proxy import connect_error, release_stdout
from appserver.wire.ids import RequestId, is_request_id
from appserver.wire.limits import MAX_MESSAGE_BYTES

READ_CHUNK: Final = 64 * 1024
HANDSHAKE_TIMEOUT: Final = 10.0
#: After our close frame, how long the server gets to answer it.
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


def _answered_id(frame: bytes | str) -> RequestId | None:
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

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0
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
        if len(buffer) > MAX_MESSAGE_BYTES or any(len(x) > MAX_MESSAGE_BYTES for x in lines):
            self.oversized = True
            return [x for x in lines if len(x) <= MAX_MESSAGE_BYTES]
        return lines

    def end(self) -> list[bytes]:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [rest] if rest else []


class Relay:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.outstanding: set[tuple[type, RequestId]] = set()
        self.input_done = False
        self.close_sent = False
        #: The connection is over (the server closed it, or stdout is gone).
        self.server_gone = False
        self._text: list[str] = []

    def handshake(self) -> None:
        self.sock.settimeout(HANDSHAKE_TIMEOUT)
        self.sock.sendall(self.ws.send(Request(host="localhost", target="/")))
        while True:
            data = self.sock.recv(READ_CHUNK)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.sock.settimeout(None)
                    return
                if isinstance(event, RejectConnection):
                    raise ConnectionError(f"the server refused the upgrade ({event.status_code})")
            if not data:
                raise ConnectionError("the server closed the connection during the upgrade")

    def forward_lines(self, lines: list[bytes]) -> None:
        for line in lines:
            if not line.strip():
                continue
            request_id = _request_id(line)
            if request_id is not None:
                self.outstanding.add((type(request_id), request_id))
            self._send(TextMessage(data=line.decode(errors="replace")))

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
            self._send(CloseConnection(code=1000))

    def _send(self, event: Event) -> None:
        if self.server_gone:
            return
        try:
            self.sock.sendall(self.ws.send(event))
        except (OSError, ProtocolError):
            self.server_gone = True

    def receive(self, data: bytes) -> None:
        """Frames from the server, written to stdout one line per message."""
        if not data:
            self.server_gone = True
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._on_message(event)
            elif isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, CloseConnection):
                if not self.close_sent:
                    self._send(event.response())
                self.server_gone = True

    def _on_message(self, event: TextMessage | BytesMessage) -> None:
        if isinstance(event, BytesMessage):
            chunk = bytes(event.data).decode(errors="replace")
        else:
            chunk = event.data
        self._text.append(chunk)
        if not event.message_finished:
            return
        frame = "".join(self._text).encode()
        self._text.clear()
        try:
            _write_all(1, frame + b"\n")
        except OSError:  # whoever reads our stdout is gone
            self.server_gone = True
            return
        answered = _answered_id(frame)
        if answered is not None:
            self.outstanding.discard((type(answered), answered))
            self.close_if_answered()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay(sock: socket.socket) -> int:
    stdin = os.dup(0)
    relay = Relay(sock)
    lines = Lines()
    try:
        relay.handshake()
    except (OSError, ConnectionError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
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
            break  # the server did not answer our close
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
