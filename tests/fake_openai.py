"""A local OpenAI-compatible endpoint for tests and benchmarks: real HTTP/1.1 on 127.0.0.1.

    async with serve_fake_openai() as fake:
        fake.script(stream(text_chunks("Hello there"), usage=(10, 2)))
        ... point the client at fake.base_url ...
        assert fake.requests[0].body["messages"][-1]["content"] == "hi"

`POST /v1/chat/completions` (and `/v1/responses`) answers with the next scripted `Reply` (a
`Stream` of SSE events, or a `Status` error); when the script is empty it streams
`DEFAULT_TEXT`. `GET /v1/models` lists `fake.models`. Every request is recorded in
`fake.requests` (method, path, headers, JSON body).
A `Stream` can stall after its chunks (`hang=True`) until the client closes the connection
(or drop the connection there, `abort=True`),
which sets `fake.client_closed`; `delay` spaces the chunks out. Keep-alive is supported, as
the SDK pools connections.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import orjson
import trio

DEFAULT_TEXT = "ok"


@attrs.define
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@attrs.define
class Stream:
    chunks: list[dict[str, Any]]
    #: Seconds between chunks (0: as fast as the socket takes them).
    delay: float = 0.0
    #: After the chunks, send nothing more until the client goes away.
    hang: bool = False
    #: End with `data: [DONE]` (Chat Completions does, the Responses API does not).
    done: bool = True
    #: After the chunks, drop the connection mid-body (a broken stream).
    abort: bool = False


@attrs.define
class Status:
    code: int
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)


Reply = Stream | Status

_ids = itertools.count(1)


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def text_chunks(text: str, pieces: int = 3) -> list[dict[str, Any]]:
    """`text` as assistant content deltas, about `pieces` of them."""
    size = max(1, -(-len(text) // pieces))
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)]
    return out


def reasoning_chunks(text: str, key: str = "reasoning_content") -> list[dict[str, Any]]:
    return [chunk({key: word}) for word in text.split(" ")]


def tool_call_chunks(
    name: str, arguments: Any, call_id: str | None = None, index: int = 0
) -> list[dict[str, Any]]:
    """One function call streamed as Chat Completions does: id and name first, then the
    arguments JSON in two pieces."""
    call_id = call_id or f"call_{next(_ids)}"
    args = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    half = len(args) // 2
    first = {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        chunk({"tool_calls": [{"index": index, "function": {"arguments": args[:half]}}]}),
        chunk({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]}),
    ]


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "fake-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def stream(
    *parts: Iterable[dict[str, Any]],
    usage: tuple[int, int] | None = None,
    finish: str = "stop",
    delay: float = 0.0,
    hang: bool = False,
) -> Stream:
    chunks = [c for part in parts for c in part]
    if not hang:
        chunks.append(chunk({}, finish_reason=finish))
        if usage is not None:
            chunks.append(usage_chunk(*usage))
    return Stream(chunks, delay=delay, hang=hang)


def responses_stream(
    text: str = "", calls: Iterable[tuple[str, str, Any]] = (), usage: tuple[int, int] = (1, 1)
) -> Stream:
    """A Responses API event stream: text deltas, then function calls `(call_id, name, args)`,
    then `response.completed` with usage."""
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": "resp_1"}}]
    words = re.findall(r"\S+\s*", text)
    events += [{"type": "response.output_text.delta", "delta": word} for word in words]
    for call_id, name, arguments in calls:
        item = {
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": orjson.dumps(arguments).decode(),
        }
        events.append({"type": "response.output_item.done", "item": item})
    usage_body = {"input_tokens": usage[0], "output_tokens": usage[1]}
    events.append({"type": "response.completed", "response": {"usage": usage_body}})
    return Stream(events, done=False)


def tool_stream(name: str, arguments: Any, call_id: str | None = None, **kw: Any) -> Stream:
    return stream(tool_call_chunks(name, arguments, call_id), finish="tool_calls", **kw)


class FakeOpenAI:
    def __init__(self) -> None:
        self.port = 0
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        self.models: list[str] = ["fake-model", "fake-small"]
        #: Set when a client closed its connection while a `hang` stream was waiting.
        self.client_closed = trio.Event()
        #: Set when a chat request arrives (the test can wait for the model to be called).
        self.request_seen = trio.Event()
        self.connections = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def chat_requests(self) -> list[Any]:
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def responses_requests(self) -> list[Any]:
        return [r.body for r in self.requests if r.path.endswith("/responses")]

    # -- serving -------------------------------------------------------------------------------

    async def handle(self, sock: trio.SocketStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(sock, conn)
                if request is None:
                    return
                self.requests.append(request)
                await self._respond(sock, conn, request)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            self.client_closed.set()
        finally:
            await sock.aclose()

    async def _read_request(self, sock: trio.SocketStream, conn: h11.Connection) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await sock.receive_some(65536)
                if not data and head is None and conn.their_state is h11.IDLE:
                    return None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = {k.decode().lower(): v.decode() for k, v in head.headers}
                return Request(
                    head.method.decode(),
                    head.target.decode(),
                    headers,
                    orjson.loads(body) if body else None,
                )
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _send(self, sock: trio.SocketStream, conn: h11.Connection, event: Any) -> None:
        data = conn.send(event)
        if data:
            await sock.send_all(data)

    async def _json(
        self,
        sock: trio.SocketStream,
        conn: h11.Connection,
        code: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = orjson.dumps(body)
        head = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        head += list((headers or {}).items())
        await self._send(sock, conn, h11.Response(status_code=code, headers=head))
        await self._send(sock, conn, h11.Data(data=payload))
        await self._send(sock, conn, h11.EndOfMessage())

    async def _respond(self, sock: trio.SocketStream, conn: h11.Connection, req: Request) -> None:
        if req.method == "GET" and req.path.endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            await self._json(sock, conn, 200, {"object": "list", "data": data})
            return
        if req.method != "POST" or not req.path.endswith(("/chat/completions", "/responses")):
            await self._json(sock, conn, 404, {"error": {"message": f"no route {req.path}"}})
            return
        self.request_seen.set()
        reply = self.replies.pop(0) if self.replies else stream(text_chunks(DEFAULT_TEXT))
        if isinstance(reply, Status):
            body = reply.body or {"error": {"message": f"status {reply.code}", "type": "fake"}}
            await self._json(sock, conn, reply.code, body, reply.headers)
            return
        head = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        await self._send(sock, conn, h11.Response(status_code=200, headers=head))
        for item in reply.chunks:
            await self._send(sock, conn, h11.Data(data=b"data: " + orjson.dumps(item) + b"\n\n"))
            if reply.delay:
                await trio.sleep(reply.delay)
        if reply.abort:
            # Drop the connection in the middle of the body (no terminating chunk).
            await sock.aclose()
            return
        if reply.hang:
            # Wait for the client to give up: EOF (or a reset) on the socket.
            try:
                while await sock.receive_some(65536):
                    pass
            finally:
                self.client_closed.set()
            raise trio.ClosedResourceError
        if reply.done:
            await self._send(sock, conn, h11.Data(data=b"data: [DONE]\n\n"))
        await self._send(sock, conn, h11.EndOfMessage())


@asynccontextmanager
async def serve_fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, fake.handle, 0, host="127.0.0.1")
        )
        fake.port = listeners[0].socket.getsockname()[1]
        yield fake
        nursery.cancel_scope.cancel()
