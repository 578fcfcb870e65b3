"""`appserver attach`: stdio JSON lines ⇄ WebSocket text frames on the control socket.

A JSON-lines client (the openai-codex SDK, a script) can share a running server this way. When
stdin ends, attach waits until every request it forwarded has been answered, then closes the
WebSocket and exits 0. When the server closes the connection, attach closes stdout and exits:
0, or 1 if requests it forwarded were left unanswered.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import orjson
import trio
from trio_websocket import ConnectionClosed, wrap_client_stream

from appserver import daemon
from appserver.home import HomeError, control_socket_path, state_runtime_error
from appserver.relay.launch import LaunchError, ensure_server
from appserver.relay.proxy import connect_error, release_stdout
from appserver.transport.stdio import LineTransport, stream_for_fd
from appserver.transport.unix import SocketPathError, probe
from appserver.wire.ids import RequestId, is_request_id
from appserver.wire.limits import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)


def _request_id(line: bytes | str) -> RequestId | None:
    """The id of a request line (something the server will answer), else None."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(value) is dict and type(value.get("method")) is str and is_request_id(value.get("id")):
        request_id: RequestId = value["id"]
        return request_id
    return None


def _answered_id(frame: bytes | str) -> RequestId | None:
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if type(value) is dict and "method" not in value and is_request_id(value.get("id")):
        answered: RequestId = value["id"]
        return answered
    return None


async def start_server(path: Path, home: Path) -> None:
    """Start a server for `home` at `path` unless one answers. The home's own socket is
    started as `appserver daemon start` starts it (one launcher, one pid file), so `daemon
    status` and `daemon stop` manage it whoever started it."""
    if probe(path):
        return
    try:
        if path == control_socket_path(home):
            await daemon.run_command("start", home)
        else:
            await ensure_server(path, home)
    except OSError as exc:
        raise state_runtime_error(home, exc) from exc


async def attach(path: Path, *, start: bool = False, home: Path | None = None) -> int:
    if start:
        assert home is not None
        try:
            await start_server(path, home)
        except (LaunchError, daemon.DaemonError, HomeError, SocketPathError) as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
    try:
        sock = await trio.open_unix_socket(os.fspath(path))
    except OSError as exc:
        print(f"Error: {connect_error(path, exc)}", file=sys.stderr)
        return 1
    lines = LineTransport(stream_for_fd(os.dup(0)), stream_for_fd(os.dup(1)))
    outstanding: set[tuple[type, RequestId]] = set()
    input_done = trio.Event()
    all_answered = trio.Event()

    def settle() -> None:
        if input_done.is_set() and not outstanding:
            all_answered.set()

    async with trio.open_nursery() as nursery:
        ws = await wrap_client_stream(
            nursery, sock, "localhost", "/", max_message_size=MAX_MESSAGE_BYTES
        )

        async def upstream() -> None:
            try:
                while (line := await lines.receive_frame()) is not None:
                    if not line.strip():
                        continue
                    request_id = _request_id(line)
                    if request_id is not None:
                        outstanding.add((type(request_id), request_id))
                    await ws.send_message(line.decode(errors="replace"))
            except ConnectionClosed:
                pass
            if lines.oversized:
                log.error("a stdin line exceeds %d bytes; closing", MAX_MESSAGE_BYTES)
                outstanding.clear()
            input_done.set()
            settle()

        async def close_when_answered() -> None:
            await all_answered.wait()
            await ws.aclose()

        nursery.start_soon(upstream)
        nursery.start_soon(close_when_answered)
        try:
            while True:
                message = await ws.get_message()
                frame = message.encode() if isinstance(message, str) else message
                await lines.send_frames([frame])
                answered = _answered_id(frame)
                if answered is not None:
                    outstanding.discard((type(answered), answered))
                    settle()
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        nursery.cancel_scope.cancel()
    release_stdout()
    if outstanding:
        print(
            f"Error: the server closed the connection with {len(outstanding)} request(s) "
            "unanswered",
            file=sys.stderr,
        )
        return 1
    return 0
