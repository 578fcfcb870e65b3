"""A fast OpenAI-compatible endpoint for the `openai` scenario, run as its own process so the
server's CPU figures are the server's alone:

    python -m benchmarks.openai_endpoint          # prints "listening on PORT"

`POST /v1/chat/completions` streams by the request's model id: `tokens-N` streams N content
deltas (one token each, e.g. `"tok "`) as fast as the socket takes them (the body is encoded
once and written in 64 KiB pieces), then usage and `[DONE]`; `hang` streams one delta and then
nothing until the client closes the connection. `GET /v1/models` lists `tokens-1000` and `hang`.
"""

from __future__ import annotations

import functools
import sys

import h11
import orjson
import trio

WRITE: int = 64 * 1024


def event(delta: dict[str, object], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


@functools.lru_cache(maxsize=8)
def body(tokens: int) -> bytes:
    token = event({"content": "tok "})
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench",
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": tokens + 10},
    }
    return b"".join(
        [
            event({"role": "assistant", "content": ""}),
            token * tokens,
            event({}, "stop"),
            b"data: " + orjson.dumps(usage) + b"\n\n",
            b"data: [DONE]\n\n",
        ]
    )


async def respond(
    stream: trio.SocketStream, conn: h11.Connection, request: h11.Request, data: bytes
) -> bool:
    """Answer one request; False when the connection must close."""
    target = request.target.decode()
    if target.endswith("/models"):
        payload = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "b"}
                    for m in ("tokens-1000", "hang")
                ],
            }
        )
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
        await stream.send_all(conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
        return True
    model = str(orjson.loads(data).get("model", "")) if data else ""
    headers = [("content-type", "text/event-stream")]
    await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
    if model == "hang":
        await stream.send_all(conn.send(h11.Data(data=event({"content": "waiting"}))))
        while await stream.receive_some(65536):
            pass
        return False
    tokens = int(model.removeprefix("tokens-")) if model.startswith("tokens-") else 10
    payload = body(tokens)
    for start in range(0, len(payload), WRITE):
        await stream.send_all(conn.send(h11.Data(data=payload[start : start + WRITE])))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    return True


async def handle(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request: h11.Request | None = None
            data = bytearray()
            while True:
                event_ = conn.next_event()
                if event_ is h11.NEED_DATA:
                    received = await stream.receive_some(65536)
                    conn.receive_data(received)
                    if not received and request is None:
                        return
                elif isinstance(event_, h11.Request):
                    request = event_
                elif isinstance(event_, h11.Data):
                    data += event_.data
                elif isinstance(event_, h11.EndOfMessage):
                    break
                elif isinstance(event_, h11.ConnectionClosed):
                    return
            assert request is not None
            if not await respond(stream, conn, request, bytes(data)):
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        pass
    finally:
        await stream.aclose()


async def main() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        )
        print(f"listening on {listeners[0].socket.getsockname()[1]}", flush=True)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(0)
