"""A small HTTP/1.1 front for socket listeners: one request head, then a decision.

It reads the request head (h11), answers plain HTTP itself (health endpoints, refusals) and
hands WebSocket upgrades on, with the bytes it already read replayed in front of the stream, to
trio-websocket. The same code path serves the Unix control socket (no health, no Origin check,
no auth) and ws:// over TCP (all three), chosen by the listener's `FrontPolicy`.
"""

from __future__ import annotations

import http
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Final

import attrs
import h11
import trio

from appserver.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

_REQUEST_LINE = re.compile(rb"[A-Z]+ [\x21-\x7e]+ HTTP/\d\.\d\r?")
#: What ends a request head (h11's own rule).
_BLANK_LINE = re.compile(rb"\n\r?\n")

HEAD_TIMEOUT: Final = 10.0
METRICS_PATH: Final = "/metrics"
#: Head deadlines are kept at least this far apart, so a wave of connections opened together
#: (a slowloris attack) times out a few at a time instead of in one scheduler batch that would
#: stall every live connection; each still gets its full HEAD_TIMEOUT.
HEAD_DEADLINE_SPACING: Final = 0.0005
#: ... and at most this much later than HEAD_TIMEOUT.
HEAD_DEADLINE_SLACK: Final = 1.0
#: Head timeouts are logged at most once per this many seconds, with a count.
HEAD_TIMEOUT_LOG_SECONDS: Final = 1.0
#: The largest request head read (h11 buffers it whole); beyond it the answer is 431. Big enough
#: for any real bearer token (Codex answers a 100 KB one with its 401).
MAX_HEAD_BYTES: Final = 1024 * 1024
READ_CHUNK: Final = 64 * 1024

#: `authorize(headers) -> None` to let the upgrade through, or the 401 body text.
Authorizer = Callable[[Mapping[str, str]], str | None]


@attrs.frozen
class FrontPolicy:
    health_paths: frozenset[str] = frozenset()
    reject_origin: bool = False
    authorize: Authorizer | None = None
    #: What to call this listener in logs.
    name: str = "websocket"
    #: The Prometheus text for `GET /metrics` (same Origin and auth rules as the upgrade); None
    #: answers /metrics like any other plain GET.
    metrics: Callable[[], bytes] | None = None


class PrefixedStream(trio.abc.Stream):
    """A stream whose first bytes come from a buffer already read off the real stream."""

    def __init__(self, prefix: bytes, stream: trio.abc.Stream) -> None:
        self._prefix = prefix
        self._stream = stream

    def unwrap(self) -> tuple[bytes, trio.abc.Stream]:
        """The bytes not yet replayed and the real stream, for a reader that takes over both."""
        prefix, self._prefix = self._prefix, b""
        return prefix, self._stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            size = max_bytes or len(self._prefix)
            data, self._prefix = bytes(self._prefix[:size]), self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _read_head(
    stream: trio.abc.Stream, parser: h11.Connection
) -> tuple[h11.Request, bytes] | None:
    """The request head and every byte read so far; None if the peer left before sending any.

    h11 sees the bytes only once the blank line that ends a head has arrived (or the input
    ended, or the head grew past its limit): a client trickling its head a line at a time (a
    slowloris) costs a search of the new bytes per read, not a parse.
    """
    raw = bytearray()
    fed = 0
    line_checked = False
    while True:
        data = await stream.receive_some(READ_CHUNK)
        if not data and not raw:
            return None
        scan_from = max(len(raw) - 2, 0)
        raw += data
        if not line_checked:
            line_end = raw.find(b"\n")
            if line_end >= 0:
                if not _REQUEST_LINE.match(raw, 0, line_end):
                    # h11 waits for the whole head; a JSON-lines client would wait for nothing.
                    raise h11.RemoteProtocolError("invalid HTTP request line")
                line_checked = True
        if data and len(raw) <= MAX_HEAD_BYTES and not _BLANK_LINE.search(raw, scan_from):
            continue
        parser.receive_data(bytes(raw[fed:]))
        fed = len(raw)
        if not data:
            parser.receive_data(b"")  # end of input: next_event raises
        event = parser.next_event()
        if isinstance(event, h11.Request):
            return event, bytes(raw)
        if event is not h11.NEED_DATA:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")


async def _respond(
    stream: trio.abc.Stream,
    parser: h11.Connection,
    status: int,
    body: str = "",
    *,
    head_only: bool = False,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    payload = body.encode()
    response_headers = [
        ("content-length", str(len(payload))),
        ("connection", "close"),
        *headers,
    ]
    if payload and not any(name == "content-type" for name, _ in headers):
        response_headers.append(("content-type", "text/plain; charset=utf-8"))
    reason = http.HTTPStatus(status).phrase.encode()
    response = h11.Response(status_code=status, headers=response_headers, reason=reason)
    out = parser.send(response) or b""
    if payload and not head_only:
        out += parser.send(h11.Data(data=payload)) or b""
    out += parser.send(h11.EndOfMessage()) or b""
    try:
        await stream.send_all(out)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def _is_upgrade(headers: Mapping[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    return "upgrade" in tokens and headers.get("upgrade", "").strip().lower() == "websocket"


class _HeadDeadlines:
    """Spaced head deadlines and a rate-limited log of the connections that missed theirs."""

    def __init__(self) -> None:
        self._last_deadline = -math.inf
        self._missed = 0
        self._logged_at = -math.inf

    def next(self) -> float:
        earliest = trio.current_time() + HEAD_TIMEOUT
        # Spaced, but never more than HEAD_DEADLINE_SLACK late: a sustained flood of new
        # connections must not stretch the deadline without bound.
        spaced = min(self._last_deadline + HEAD_DEADLINE_SPACING, earliest + HEAD_DEADLINE_SLACK)
        deadline = max(earliest, spaced)
        self._last_deadline = deadline
        return deadline

    def missed(self, name: str) -> None:
        self._missed += 1
        now = trio.current_time()
        if now - self._logged_at >= HEAD_TIMEOUT_LOG_SECONDS:
            log.warning(
                "%d %s client(s) sent no request head within %ss",
                self._missed,
                name,
                HEAD_TIMEOUT,
            )
            self._missed, self._logged_at = 0, now


_head_deadlines = _HeadDeadlines()


def next_head_deadline() -> float:
    """The deadline for a new connection's request head (spaced from the previous one's)."""
    return _head_deadlines.next()


def missed_head_deadline(name: str) -> None:
    _head_deadlines.missed(name)


async def front(
    stream: trio.abc.Stream, policy: FrontPolicy, deadline: float | None = None
) -> trio.abc.Stream | None:
    """Serve plain HTTP or refuse; return the stream to upgrade, or None when done with it.

    `deadline`: for the whole head, when the caller already started its clock."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    if deadline is None:
        deadline = _head_deadlines.next()
    with trio.CancelScope(deadline=deadline) as timeout:
        try:
            head = await _read_head(stream, parser)
        except h11.RemoteProtocolError as exc:
            log.warning("failed to upgrade %s connection: %s", policy.name, exc)
            hint = exc.error_status_hint
            if hint == http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
                await _respond(stream, parser, hint, http.HTTPStatus(hint).phrase)
            elif parser.our_state is h11.SEND_RESPONSE:
                await _respond(stream, parser, hint, "Bad Request")
            return None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
    if timeout.cancelled_caught:
        _head_deadlines.missed(policy.name)
        return None
    if head is None:
        log.debug("%s client closed before sending a request", policy.name)
        return None
    request, raw = head
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
    method = request.method.decode("latin-1")
    path = request.target.decode("latin-1").split("?", 1)[0]
    authorizations = sum(1 for name, _ in request.headers if name == b"authorization")
    refusal = _refusal(policy, method, path, headers, authorizations)
    if refusal is None:
        return PrefixedStream(raw, stream)
    status, body, extra = refusal
    await _respond(stream, parser, status, body, head_only=method == "HEAD", headers=extra)
    return None


def _refusal(
    policy: FrontPolicy, method: str, path: str, headers: Mapping[str, str], authorizations: int
) -> tuple[int, str, tuple[tuple[str, str], ...]] | None:
    """The plain HTTP answer to give instead of upgrading, or None to upgrade."""
    if policy.reject_origin and "origin" in headers:
        log.warning("rejecting websocket listener request with Origin header")
        return 403, "Forbidden", ()
    if path in policy.health_paths:
        if method in ("GET", "HEAD"):
            return 200, "", ()
        return 405, "", (("allow", "GET,HEAD"),)
    if path == METRICS_PATH and policy.metrics is not None:
        if method not in ("GET", "HEAD"):
            return 405, "", (("allow", "GET,HEAD"),)
        reason = _auth_refusal(policy, headers, authorizations)
        if reason is not None:
            return 401, reason, ()
        return 200, policy.metrics().decode(), (("content-type", CONTENT_TYPE),)
    if not _is_upgrade(headers):
        return 400, "Connection header did not include 'upgrade'", ()
    if "sec-websocket-key" not in headers or headers.get("sec-websocket-version") != "13":
        return 400, "missing or unsupported Sec-WebSocket-Key/Version", ()
    reason = _auth_refusal(policy, headers, authorizations)
    if reason is not None:
        return 401, reason, ()
    return None


def _auth_refusal(
    policy: FrontPolicy, headers: Mapping[str, str], authorizations: int
) -> str | None:
    """The 401 text, or None when auth is off or the request carries a valid token."""
    if policy.authorize is None:
        return None
    # Codex takes the first, a proxy in between may have taken another: refuse instead.
    reason = "multiple authorization headers" if authorizations > 1 else policy.authorize(headers)
    if reason is not None:
        log.warning("rejecting websocket client during upgrade: %s", reason)
    return reason
