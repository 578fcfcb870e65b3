"""What a client of the Unix control socket speaks, told apart by its first byte.

Codex's clients (the TUI's `--remote unix://`, `proxy`) open a WebSocket: an HTTP request head,
so their first byte is a letter. `appserver attach` writes JSON lines straight to the socket, as
on stdio: its first byte is `{` or `[` (after optional whitespace), which no HTTP request starts
with. Sparing attach a WebSocket client is what lets a client join a running server faster than
Codex starts itself. Either way the first bytes must arrive within the head deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import trio

from appserver.connection import FrameTransport
from appserver.transport.http_front import (
    FrontPolicy,
    PrefixedStream,
    missed_head_deadline,
    next_head_deadline,
)
from appserver.transport.inbound import InboundBudget
from appserver.transport.lines import READ_CHUNK, LineTransport
from appserver.transport.websocket import serve_websocket_client

log = logging.getLogger(__name__)

JSON_LINE_STARTS: Final = frozenset(b"{[")
WHITESPACE: Final = frozenset(b" \t\r\n")

ServeTransport = Callable[[FrameTransport], Awaitable[None]]


def speaks_json_lines(first: bytes | bytearray) -> bool | None:
    """True for JSON lines, False for anything else (HTTP), None while only whitespace came."""
    for byte in first:
        if byte not in WHITESPACE:
            return byte in JSON_LINE_STARTS
    return None


async def _first_bytes(
    stream: trio.abc.Stream, policy: FrontPolicy, deadline: float
) -> tuple[bytes, bool] | None:
    """What the client sent first and whether it is JSON lines; None if it sent nothing in time.

    The head deadline started here also bounds the rest of an HTTP head."""
    received = bytearray()
    with trio.CancelScope(deadline=deadline) as timeout:
        while True:
            try:
                data = await stream.receive_some(READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return None
            if not data:
                return None
            received += data
            kind = speaks_json_lines(received)
            if kind is not None:
                return bytes(received), kind
            if len(received) > READ_CHUNK:
                return bytes(received), False  # whitespace only: the HTTP parser refuses it
    if timeout.cancelled_caught:
        missed_head_deadline(policy.name)
    return None


async def serve_control_client(
    stream: trio.abc.Stream,
    policy: FrontPolicy,
    serve: ServeTransport,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    budget: InboundBudget | None = None,
) -> None:
    """Take one accepted control-socket stream to `serve`, as JSON lines or a WebSocket."""
    deadline = next_head_deadline()
    try:
        first = await _first_bytes(stream, policy, deadline)
        if first is None:
            return
        received, json_lines = first
        prefixed = PrefixedStream(received, stream)
        if not json_lines:
            await serve_websocket_client(
                prefixed, policy, serve, extra_headers, budget=budget, head_deadline=deadline
            )
            return
        lines = LineTransport(prefixed, prefixed, budget=budget)
        try:
            await serve(lines)
        finally:
            lines.release_budget()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        # One connection's failure must never take the listener (and everyone else) down.
        log.exception("%s connection failed", policy.name)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()  # again after the WebSocket path: closing twice is a no-op
