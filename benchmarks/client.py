"""Load clients on trio: one message channel per connection, a tiny JSON-RPC layer, and the
closed-loop request/response driver used by the throughput scenario.

Channels: `WsChannel` (trio-websocket over a Unix or TCP stream; one JSON message per text
frame) and `LineChannel` (JSON lines on a process's stdin/stdout). The same client code drives
every target, so differences in the numbers come from the servers.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import os
import struct
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

#: Large enough for a turn's `item/completed` carrying every delta of a flood.
MAX_MESSAGE_BYTES: Final = 512 * 1024 * 1024
RECEIVE_BUFFER: Final = 64 * 1024
CLOSE_TIMEOUT: Final = 1.0
DRAIN_TIMEOUT: Final = 10.0
READINESS: Final = "windowsSandbox/readiness"


class Closed(Exception):
    """The peer closed the channel (EOF, close frame or reset)."""


class RpcFailure(Exception):
    """A JSON-RPC error reply where a result was expected."""


class Channel(Protocol):
    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes:
        """The next whole message; raises `Closed` at the end."""
        ...

    async def aclose(self) -> None: ...


class WsChannel:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        try:
            await self.ws.send_message(text)
        except ConnectionClosed as exc:
            raise Closed(str(exc)) from exc

    async def receive(self) -> str | bytes:
        try:
            return await self.ws.get_message()
        except ConnectionClosed as exc:
            raise Closed(str(exc)) from exc

    async def aclose(self) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            await self.ws.aclose()


class LineChannel:
    """JSON lines over a pair of byte streams (a stdio server's stdin and stdout)."""

    def __init__(self, send: trio.abc.SendStream, receive: trio.abc.ReceiveStream) -> None:
        self._send = send
        self._receive = receive
        self._buffer = b""
        self._lines: list[bytes] = []
        self._next = 0

    async def send(self, text: str) -> None:
        try:
            await self._send.send_all(text.encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise Closed(str(exc)) from exc

    async def receive(self) -> bytes:
        while self._next >= len(self._lines):
            data = await self._receive.receive_some(RECEIVE_BUFFER)
            if not data:
                raise Closed("EOF")
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            self._lines, self._next = lines, 0
        line = self._lines[self._next]
        self._next += 1
        return line

    async def aclose(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._send.aclose()


class RawWsChannel:
    """A minimal WebSocket client for reading floods: server frames are parsed straight off the
    socket, every complete frame of a read at once.

    trio-websocket hands each message from its reader task over a channel; at ~25,000 messages/s
    that per-message hop makes the Python client, not the server, the bottleneck of the fan-out
    scenario. appserver's frames are unfragmented and unmasked, and it never pings, so a frame
    is a 2/4/10-byte header and its payload. Sent frames are masked with a zero key (valid, and
    the payload stays as it is).
    """

    def __init__(self, stream: trio.SocketStream, leftover: bytes) -> None:
        self._stream = stream
        self._buffer = bytearray(leftover)
        self._messages: collections.deque[bytes] = collections.deque()
        self._closed = False

    async def send(self, text: str) -> None:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            header = bytes((0x81, 0x80 | size))
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        try:
            await self._stream.send_all(header + b"\0\0\0\0" + payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise Closed(str(exc)) from exc

    def _parse(self) -> None:
        buffer, pos, end = self._buffer, 0, len(self._buffer)
        while end - pos >= 2:
            opcode, size = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if end - pos < 4:
                    break
                (size,) = struct.unpack_from("!H", buffer, pos + 2)
                head = 4
            elif size == 127:
                if end - pos < 10:
                    break
                (size,) = struct.unpack_from("!Q", buffer, pos + 2)
                head = 10
            if end - pos < head + size:
                break
            if opcode in (0x1, 0x2):
                self._messages.append(bytes(buffer[pos + head : pos + head + size]))
            elif opcode == 0x8:
                self._closed = True
            pos += head + size
        del buffer[:pos]

    async def receive(self) -> bytes:
        while not self._messages:
            if self._closed:
                raise Closed("close frame")
            try:
                data = await self._stream.receive_some(RECEIVE_BUFFER)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise Closed(str(exc)) from exc
            if not data:
                raise Closed("EOF")
            self._buffer += data
            self._parse()
        return self._messages.popleft()

    async def aclose(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            with trio.move_on_after(CLOSE_TIMEOUT) as scope:
                scope.shield = True
                await self._stream.send_all(b"\x88\x82\0\0\0\0\x03\xe8")  # close, 1000
            await self._stream.aclose()


_UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def open_raw_ws(stream: trio.SocketStream) -> RawWsChannel:
    """The WebSocket upgrade done by hand, then a `RawWsChannel` over the stream."""
    await stream.send_all(_UPGRADE)
    response = b""
    while b"\r\n\r\n" not in response:
        data = await stream.receive_some(RECEIVE_BUFFER)
        if not data:
            raise Closed("EOF during the WebSocket handshake")
        response += data
    head, _, leftover = response.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise Closed(f"upgrade refused: {head[:80]!r}")
    return RawWsChannel(stream, leftover)


async def open_ws(
    nursery: trio.Nursery,
    stream: trio.SocketStream,
    *,
    message_queue_size: int = 64,
    receive_buffer_size: int = RECEIVE_BUFFER,
) -> WsChannel:
    """The WebSocket upgrade over an already connected stream (its reader runs in `nursery`)."""
    ws = await wrap_client_stream(
        nursery,
        stream,
        "localhost",
        "/",
        message_queue_size=message_queue_size,
        max_message_size=MAX_MESSAGE_BYTES,
        receive_buffer_size=receive_buffer_size,
    )
    return WsChannel(ws)


async def close_all(channels: Sequence[Channel]) -> None:
    """Close every channel concurrently (each close is bounded by `CLOSE_TIMEOUT`)."""
    async with trio.open_nursery() as closing:
        for channel in channels:
            closing.start_soon(channel.aclose)


async def connect_unix(path: os.PathLike[str] | str) -> trio.SocketStream:
    return await trio.open_unix_socket(os.fspath(path))


async def connect_tcp(address: tuple[str, int]) -> trio.SocketStream:
    return await trio.open_tcp_stream(*address)


# -- JSON-RPC ------------------------------------------------------------------------------------


def request_text(request_id: int, method: str, params: Any = None) -> str:
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message).decode()


class Rpc:
    """Sequential request/response on a channel; notifications seen meanwhile are kept."""

    def __init__(self, channel: Channel, *, keep_notifications: bool = False) -> None:
        self.channel = channel
        self._ids = itertools.count(1)
        self.keep_notifications = keep_notifications
        self.notifications: list[dict[str, Any]] = []

    async def request(self, method: str, params: Any = None) -> Any:
        request_id = next(self._ids)
        await self.channel.send(request_text(request_id, method, params))
        while True:
            message = orjson.loads(await self.channel.receive())
            if message.get("id") == request_id and "method" not in message:
                if "error" in message:
                    raise RpcFailure(f"{method}: {message['error']}")
                return message.get("result")
            if self.keep_notifications:
                self.notifications.append(message)

    async def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        await self.channel.send(orjson.dumps(message).decode())

    async def initialize(self, name: str = "bench", *, experimental: bool = False) -> Any:
        params: dict[str, Any] = {"clientInfo": {"name": name, "version": "1.0.0"}}
        if experimental:
            params["capabilities"] = {"experimentalApi": True}
        result = await self.request("initialize", params)
        await self.notify("initialized")
        return result


async def open_initialized_ws(
    nursery: trio.Nursery, stream: trio.SocketStream, name: str = "bench", **kwargs: Any
) -> WsChannel:
    channel = await open_ws(nursery, stream, **kwargs)
    await Rpc(channel).initialize(name)
    return channel


# -- closed-loop load ----------------------------------------------------------------------------


class Phase:
    """Warm-up, then the measured window [start, end), then stop."""

    def __init__(self) -> None:
        self.start = math.inf
        self.end = math.inf
        self.stopping = False


class Samples:
    """(send time, reply time) of every request of one connection."""

    __slots__ = ("done", "errors", "sent")

    def __init__(self) -> None:
        self.sent = array("d")
        self.done = array("d")
        self.errors = 0

    def add(self, sent: float, done: float) -> None:
        self.sent.append(sent)
        self.done.append(done)

    def latencies(self, start: float, end: float) -> list[float]:
        return [d - s for s, d in zip(self.sent, self.done, strict=True) if s >= start and d < end]


async def closed_loop(
    channel: Channel, window: int, phase: Phase, samples: Samples, method: str = READINESS
) -> None:
    """Keep `window` requests in flight on `channel` until `phase.stopping`."""
    if window == 1:
        await _one_at_a_time(channel, phase, samples, method)
    else:
        await _pipelined(channel, window, phase, samples, method)


async def _one_at_a_time(channel: Channel, phase: Phase, samples: Samples, method: str) -> None:
    loads, clock = orjson.loads, time.perf_counter
    for request_id in itertools.count(1):
        if phase.stopping:
            return
        text = f'{{"id":{request_id},"method":"{method}"}}'
        sent = clock()
        await channel.send(text)
        while True:
            message = loads(await channel.receive())
            if message.get("id") == request_id:
                break
        samples.add(sent, clock())
        if "error" in message:
            samples.errors += 1


async def _pipelined(
    channel: Channel, window: int, phase: Phase, samples: Samples, method: str
) -> None:
    loads, clock = orjson.loads, time.perf_counter
    in_flight: dict[int, float] = {}
    space = trio.Semaphore(window)
    drained = trio.Event()

    async def read_replies() -> None:
        while True:
            message = loads(await channel.receive())
            reply_id = message.get("id")
            sent = in_flight.pop(reply_id, None) if type(reply_id) is int else None
            if sent is None:
                continue  # a notification
            samples.add(sent, clock())
            if "error" in message:
                samples.errors += 1
            space.release()
            if phase.stopping and not in_flight:
                drained.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_replies)
        for request_id in itertools.count(1):
            await space.acquire()
            if phase.stopping:
                break
            in_flight[request_id] = clock()
            await channel.send(f'{{"id":{request_id},"method":"{method}"}}')
        if in_flight:
            with trio.move_on_after(DRAIN_TIMEOUT):
                await drained.wait()
        nursery.cancel_scope.cancel()


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float | None
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


async def measure_load(
    channels: Sequence[Channel],
    window: int,
    *,
    warmup: float,
    duration: float,
    server_cpu: Any = None,
) -> LoadResult:
    """Run every channel closed-loop: `warmup` seconds, then `duration` seconds measured.
    `server_cpu()` returns the server's CPU seconds so far (or None)."""
    phase = Phase()
    all_samples = [Samples() for _ in channels]
    cpu_before = cpu_after = None
    with trio.fail_after(warmup + duration + DRAIN_TIMEOUT + 10):
        async with trio.open_nursery() as nursery:
            for channel, samples in zip(channels, all_samples, strict=True):
                nursery.start_soon(closed_loop, channel, window, phase, samples)
            await trio.sleep(warmup)
            cpu_before = server_cpu() if server_cpu else None
            client_before = time.process_time()
            phase.start = time.perf_counter()
            await trio.sleep(duration)
            phase.end = time.perf_counter()
            cpu_after = server_cpu() if server_cpu else None
            client_after = time.process_time()
            phase.stopping = True
    seconds = phase.end - phase.start
    latencies: list[float] = []
    for samples in all_samples:
        latencies.extend(samples.latencies(phase.start, phase.end))
    errors = sum(s.errors for s in all_samples)
    server = None
    if cpu_before is not None and cpu_after is not None:
        server = (cpu_after - cpu_before) / seconds
    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        latencies=latencies,
        errors=errors,
        server_cpu=server,
        client_cpu=(client_after - client_before) / seconds,
    )
