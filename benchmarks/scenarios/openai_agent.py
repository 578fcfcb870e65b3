"""Scenario 8: the built-in `openai` agent against a local OpenAI-compatible endpoint
(`benchmarks.openai_endpoint`, its own process), side by side with reading that endpoint
directly (appserver only: Codex cannot be pointed at a Chat Completions endpoint here).

- stream: the endpoint streams N one-token deltas as fast as it can. Raw: this process reads
  them through the openai SDK, once as bytes decoded the way the agent does (SSE + orjson) and
  once as the SDK's typed chunks; CPU per token is this process's. appserver: a turn streams
  them to 1, 4 or 16 subscribers of the thread; CPU per token is the server's, from
  `turn/start` to `turn/completed`, per streamed token (not per delivered notification).
- first delta: raw, request sent → first SSE event; appserver, `turn/start` sent → first
  `item/agentMessage/delta` on a persisted thread (the turn and the user's message item are
  written to SQLite first), a new thread each time or one thread growing to N turns (each turn
  sends the whole history). `added` is the difference of the p50s, against raw samples taken
  one before each turn (the same conditions on a machine whose load changes by the second).
- interrupt: the endpoint sends one delta and stalls; `turn/interrupt` sent → `turn/completed`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import orjson
import trio

from appserver.app.agents.openai.sse import SseDecoder
from benchmarks.client import close_all, request_text
from benchmarks.flood import (
    TURN_START_ID,
    Subscriber,
    open_subscribers,
    read_turn,
    resume,
    start_thread,
    turn_start_text,
)
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import REPO_ROOT, Server, Target, cpu_seconds, running
from benchmarks.settings import Settings
from benchmarks.stats import median

SUBSCRIBERS: Final = (1, 4, 16)
DELTA: Final = "item/agentMessage/delta"
COMPLETED: Final = '"turn/completed"'
INTERRUPT_ID: Final = 2_000_000


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@asynccontextmanager
async def endpoint() -> AsyncIterator[tuple[str, trio.Process]]:
    """The fast endpoint process; its base URL."""
    env = dict(os.environ, PYTHONPATH=os.fspath(REPO_ROOT))
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "benchmarks.openai_endpoint"],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(1)
        port = int(line.split()[-1])
        yield f"http://127.0.0.1:{port}/v1", process
    finally:
        process.kill()
        await process.wait()


async def raw_stream(base_url: str, tokens: int, typed: bool) -> tuple[float, float]:
    """CPU seconds of this process and wall seconds to read `tokens` tokens directly."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    body: dict[str, Any] = {"model": f"tokens-{tokens}", "messages": [], "stream": True}
    cpu, wall = time.process_time(), time.perf_counter()
    count = 0
    if typed:
        chunks = await client.chat.completions.create(**body)
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
    else:
        async with client.chat.completions.with_streaming_response.create(**body) as response:
            decoder = SseDecoder()
            async for data in response.http_response.aiter_bytes():
                for payload in decoder.feed(data):
                    if payload != b"[DONE]":
                        event = orjson.loads(payload)
                        choices = event.get("choices")
                        if choices and choices[0]["delta"].get("content"):
                            count += 1
    assert count == tokens, count
    result = time.process_time() - cpu, time.perf_counter() - wall
    await client.close()
    return result


class RawFirstEvent:
    """Milliseconds from sending a request to its first SSE event, over a pooled connection."""

    def __init__(self, base_url: str) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
        self.body: dict[str, Any] = {"model": "tokens-5", "messages": [], "stream": True}

    async def sample(self) -> float:
        completions = self.client.chat.completions
        started = time.perf_counter()
        async with completions.with_streaming_response.create(**self.body) as response:
            first = None
            async for data in response.http_response.aiter_bytes():
                if first is None and b"data:" in data:
                    first = time.perf_counter()
        assert first is not None
        return (first - started) * 1000

    async def close(self) -> None:
        await self.client.close()


async def raw_first_event(raw: RawFirstEvent, samples: int) -> list[float]:
    out = [await raw.sample() for _ in range(samples + 1)]
    return out[1:]  # the first opened the connection


class OpenAIAgentScenario(Scenario):
    name = "openai"
    title = "8. The openai agent vs the raw endpoint (appserver only)"
    codex_ok = False
    keys = ("measure", "path", "subscribers")
    columns = (
        Column("tokens", "tokens"),
        Column("cpu_us_per_token", "CPU us/token", "{:.1f}"),
        Column("endpoint_cpu_us_per_token", "endpoint CPU us/token", "{:.1f}"),
        Column("tokens_per_s", "tokens/s per subscriber"),
        Column("p50_ms", "p50 ms", "{:.2f}"),
        Column("p99_ms", "p99 ms", "{:.2f}"),
        Column("raw_p50_ms", "raw p50 ms beside", "{:.2f}"),
        Column("added_p50_ms", "added p50 ms", "{:.2f}"),
    )
    notes = (
        "CPU us/token is the reading process's CPU time over the streamed tokens: this "
        "benchmark process for the raw rows, the appserver process for the others (one "
        "`item/agentMessage/delta` per token, to every subscriber). The endpoint runs in its "
        "own process. Latencies are over a pooled connection (the agent reuses its "
        "connection across turns)."
    )

    def budget(self, settings: Settings) -> float:
        return 300.0

    async def run_once(self, target: Target, settings: Settings) -> list[Row]:
        tokens = 5000 if settings.quick else 20000
        samples = 10 if settings.quick else 40
        rows: list[Row] = []
        async with endpoint() as (base_url, endpoint_process):
            for typed in (False, True):
                cpu, wall = await raw_stream(base_url, tokens, typed)
                path = "raw: SDK typed chunks" if typed else "raw: SDK bytes + SSE + orjson"
                rows.append(
                    {
                        "measure": "stream",
                        "path": path,
                        "subscribers": 1,
                        "tokens": tokens,
                        "cpu_us_per_token": cpu / tokens * 1e6,
                        "tokens_per_s": tokens / wall,
                    }
                )
            raw = RawFirstEvent(base_url)
            raw_first = await raw_first_event(raw, samples)
            rows.append(
                {
                    "measure": "first delta",
                    "path": "raw endpoint",
                    "subscribers": 1,
                    "p50_ms": median(raw_first),
                    "p99_ms": percentile(raw_first, 0.99),
                }
            )
            os.environ["OPENAI_BASE_URL"] = base_url
            os.environ["OPENAI_API_KEY"] = "bench"
            extra = ["--agent", "openai", "--log-level", "WARNING"]
            async with running(target, "unix", extra=extra) as server:
                for subscribers in SUBSCRIBERS:
                    rows.append(await self._stream(server, endpoint_process, tokens, subscribers))
                for fresh in (True, False):
                    first, beside = await self._first_deltas(server, samples, fresh, raw)
                    path = "appserver, new thread" if fresh else "appserver, growing thread"
                    rows.append(
                        {
                            "measure": "first delta",
                            "path": path,
                            "subscribers": 1,
                            "p50_ms": median(first),
                            "p99_ms": percentile(first, 0.99),
                            "raw_p50_ms": median(beside),
                            "added_p50_ms": (median(first) or 0) - (median(beside) or 0),
                        }
                    )
                await raw.close()
                interrupts = await self._interrupts(server, samples)
                rows.append(
                    {
                        "measure": "interrupt → turn/completed",
                        "path": "appserver --agent openai",
                        "subscribers": 1,
                        "p50_ms": median(interrupts),
                        "p99_ms": percentile(interrupts, 0.99),
                    }
                )
        return rows

    async def _stream(
        self, server: Server, endpoint_process: trio.Process, tokens: int, subscribers: int
    ) -> Row:
        async with trio.open_nursery() as nursery:
            channels = await open_subscribers(nursery, server, subscribers, raw=True)
            thread_id = await start_thread(channels[0], ephemeral=True, model=f"tokens-{tokens}")
            for channel in channels[1:]:
                await resume(channel, thread_id)
            # A warm-up turn: the SDK import and the first connection are not per-token costs.
            await self._turn(channels[:1], thread_id, tokens)
            for channel in channels[1:]:
                await self._drain(channel)
            endpoint_cpu = cpu_seconds(endpoint_process.pid)
            server_cpu = server.cpu()
            subs = await self._turn(channels, thread_id, tokens)
            server_used = (server.cpu() or 0) - (server_cpu or 0)
            endpoint_used = (cpu_seconds(endpoint_process.pid) or 0) - (endpoint_cpu or 0)
            await close_all(channels)
            nursery.cancel_scope.cancel()
        rates = [s.rate for s in subs if s.rate is not None]
        return {
            "measure": "stream",
            "path": "appserver --agent openai",
            "subscribers": subscribers,
            "tokens": tokens,
            "cpu_us_per_token": server_used / tokens * 1e6,
            "endpoint_cpu_us_per_token": endpoint_used / tokens * 1e6,
            "tokens_per_s": median(rates),
            "complete": all(s.count == tokens for s in subs),
        }

    async def _turn(self, channels: list[Any], thread_id: str, tokens: int) -> list[Subscriber]:
        subs = [Subscriber(channel, expected=tokens) for channel in channels]
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for sub in subs:
                    nursery.start_soon(read_turn, sub)
                await channels[0].send(turn_start_text(thread_id, "go"))
        return subs

    async def _drain(self, channel: Any) -> None:
        """Read up to the warm-up turn's `turn/completed` on a resumed subscriber."""
        with trio.fail_after(60):
            while True:
                message = await channel.receive()
                text = message if isinstance(message, str) else message.decode()
                if COMPLETED in text[:48]:
                    return

    async def _first_deltas(
        self, server: Server, samples: int, fresh: bool, raw: RawFirstEvent
    ) -> tuple[list[float], list[float]]:
        """`turn/start` → first delta on persisted threads: a new thread per turn, or one
        thread whose history grows by a turn each time; and a raw sample before each turn."""
        async with trio.open_nursery() as nursery:
            (channel,) = await open_subscribers(nursery, server, 1, raw=True)
            thread_id = await start_thread(channel, ephemeral=False, model="tokens-5")
            out = []
            beside = []
            for _ in range(samples + 1):
                if fresh:
                    thread_id = await start_thread(channel, ephemeral=False, model="tokens-5")
                beside.append(await raw.sample())
                started = time.perf_counter()
                await channel.send(turn_start_text(thread_id, "hi"))
                first = None
                while True:
                    message = await channel.receive()
                    text = message if isinstance(message, str) else message.decode()
                    if first is None and DELTA in text[:64]:
                        first = time.perf_counter()
                    elif COMPLETED in text[:48]:
                        break
                assert first is not None
                out.append((first - started) * 1000)
            await close_all([channel])
            nursery.cancel_scope.cancel()
        return out[1:], beside[1:]

    async def _interrupts(self, server: Server, samples: int) -> list[float]:
        async with trio.open_nursery() as nursery:
            (channel,) = await open_subscribers(nursery, server, 1, raw=True)
            thread_id = await start_thread(channel, ephemeral=True, model="hang")
            out = []
            for index in range(samples):
                await channel.send(turn_start_text(thread_id, "go", TURN_START_ID + index))
                turn_id = None
                while True:
                    message = await channel.receive()
                    frame = orjson.loads(message)
                    if frame.get("id") == TURN_START_ID + index:
                        turn_id = frame["result"]["turn"]["id"]
                    elif frame.get("method") == DELTA:
                        break
                params = {"threadId": thread_id, "turnId": turn_id}
                started = time.perf_counter()
                await channel.send(request_text(INTERRUPT_ID + index, "turn/interrupt", params))
                while True:
                    message = await channel.receive()
                    text = message if isinstance(message, str) else message.decode()
                    if COMPLETED in text[:48]:
                        out.append((time.perf_counter() - started) * 1000)
                        break
            await close_all([channel])
            nursery.cancel_scope.cancel()
        return out
