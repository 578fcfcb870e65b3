"""In-process harness for the application: `build_app` over a temp-home `StateStore`, with fake
connections whose outbound frames a test reads as a client would.

    async with open_app(tmp_path) as app:
        a = await app.client(experimental=True)
        thread = (await a.call("thread/start", {}))["thread"]
        await a.call("turn/start", {"threadId": thread["id"], "input": text("hi")})
        done = await a.notification("turn/completed")

A `Client` keeps every frame it received (`frames`, for schema checks, with the method of each
of its requests in `methods`) and an `inbox` of frames no wait has consumed yet. Waits read the
connection's queue as its writer would, so they block on the app's own progress, never on a
timer; each is bounded by `TIMEOUT` (commands run real subprocesses).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import trio

from appserver.app.agents import Agent
from appserver.app.store import StateStore
from appserver.app.threads import Threads
from appserver.connection import Connection, Origin, QueueLimits
from appserver.server import App, ServerConfig, build_app, load_agents
from appserver.transport.listen import Stdio
from tests.schema import schema_for

TIMEOUT = 10.0

Frame = dict[str, Any]


def text(value: str) -> list[dict[str, Any]]:
    """A user input list with one text item."""
    return [{"type": "text", "text": value, "text_elements": []}]


class RpcFailed(AssertionError):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method} failed: {error}")
        self.error = error


class Client:
    def __init__(self, harness: AppHarness, connection: Connection) -> None:
        self.harness = harness
        self.connection = connection
        self.experimental = False
        self.frames: list[Frame] = []
        self.inbox: list[Frame] = []
        #: request id → method, for every request this client sent.
        self.methods: dict[Any, str] = {}
        self._ids = itertools.count(1)
        self.closed = False

    @property
    def id(self) -> int:
        return self.connection.id

    # -- reading -----------------------------------------------------------------------------

    def _took(self, data: bytes, receipt: Any) -> None:
        self.connection.queued_bytes -= len(data)
        if receipt is not None:
            receipt.settle(True)
        frame = orjson.loads(data)
        self.frames.append(frame)
        self.inbox.append(frame)

    def pull(self) -> list[Frame]:
        """Move every frame queued right now into the inbox; returns the inbox."""
        receive = self.connection._receive
        while True:
            try:
                data, receipt = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self._took(data, receipt)
        self.connection._space.unpark_all()
        return self.inbox

    async def _receive_one(self) -> None:
        data, receipt = await self.connection._receive.receive()
        self._took(data, receipt)
        self.connection._space.unpark_all()

    async def wait_for(self, match: Callable[[Frame], bool], within: float = TIMEOUT) -> Frame:
        """The first inbox frame `match` accepts (removed from the inbox), waiting for it."""
        with trio.fail_after(within):
            while True:
                self.pull()
                for index, frame in enumerate(self.inbox):
                    if match(frame):
                        return self.inbox.pop(index)
                await self._receive_one()

    async def notification(self, method: str, within: float = TIMEOUT, **params: Any) -> Frame:
        """The next notification `method` whose params contain `params` (by equality)."""

        def match(frame: Frame) -> bool:
            if frame.get("method") != method or "id" in frame:
                return False
            got = frame.get("params") or {}
            return all(got.get(k) == v for k, v in params.items())

        params_of: dict[str, Any] = (await self.wait_for(match, within))["params"]
        return params_of

    async def server_request(self, method: str, within: float = TIMEOUT) -> Frame:
        return await self.wait_for(lambda f: f.get("method") == method and "id" in f, within)

    async def turn_frames(self, thread_id: str, within: float = TIMEOUT) -> list[Frame]:
        """Wait for the thread's next unconsumed `turn/completed`; returns every frame from that
        turn's `turn/started` to it, in order, and consumes them from the inbox."""
        completed = await self.wait_for(
            lambda f: f.get("method") == "turn/completed" and f["params"]["threadId"] == thread_id,
            within,
        )
        end = next(i for i, f in enumerate(self.frames) if f is completed)
        start = max(
            i
            for i, f in enumerate(self.frames[:end])
            if f.get("method") == "turn/started" and f["params"]["threadId"] == thread_id
        )
        turn = self.frames[start : end + 1]
        taken = {id(f) for f in turn}
        self.inbox = [f for f in self.inbox if id(f) not in taken]
        return turn

    def received(self, method: str) -> list[Any]:
        """The params of every notification `method` received so far (consumed or not)."""
        self.pull()
        return [f.get("params") for f in self.frames if f.get("method") == method and "id" not in f]

    # -- writing -----------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        await self.harness.app.processor.handle_frame(self.connection, orjson.dumps(message))

    async def request(self, method: str, params: Any = None, *, no_params: bool = False) -> Frame:
        """Send a request and wait for its reply frame (result or error)."""
        request_id = next(self._ids)
        self.methods[request_id] = method
        message: dict[str, Any] = {"id": request_id, "method": method}
        if not no_params:
            message["params"] = {} if params is None else params
        await self.send(message)
        return await self.wait_for(lambda f: f.get("id") == request_id and "method" not in f)

    async def call(self, method: str, params: Any = None, *, no_params: bool = False) -> Any:
        reply = await self.request(method, params, no_params=no_params)
        if "error" in reply:
            raise RpcFailed(method, reply["error"])
        return reply["result"]

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        reply = await self.request(method, params)
        assert "error" in reply, f"{method} unexpectedly succeeded: {reply}"
        error: dict[str, Any] = reply["error"]
        return error

    async def reply(self, request_id: Any, result: Any = None, error: Any = None) -> None:
        if error is not None:
            await self.send({"id": request_id, "error": error})
        else:
            await self.send({"id": request_id, "result": result})

    async def initialize(
        self,
        *,
        experimental: bool = False,
        opt_out: list[str] | None = None,
        name: str = "test_client",
    ) -> Any:
        capabilities: dict[str, Any] = {}
        if experimental:
            capabilities["experimentalApi"] = True
        if opt_out is not None:
            capabilities["optOutNotificationMethods"] = opt_out
        params: dict[str, Any] = {"clientInfo": {"name": name, "version": "1.0.0"}}
        if capabilities:
            params["capabilities"] = capabilities
        self.experimental = experimental
        return await self.call("initialize", params)

    def disconnect(self) -> None:
        """As the connection layer does when the socket goes: input closed, then closed."""
        processor = self.harness.app.processor
        processor.connection_input_closed(self.connection)
        processor.connection_closed(self.connection)
        self.connection.close_outbound()
        self.closed = True

    # -- checks ------------------------------------------------------------------------------

    def assert_schema_valid(self) -> int:
        """Validate every frame received against the schema set for this client's capability
        (strict stable schema without experimentalApi); returns how many were checked."""
        self.pull()
        schema = schema_for(self.experimental)
        for frame in self.frames:
            schema.validate_frame(frame, self.methods.get(frame.get("id")))
        return len(self.frames)


class AppHarness:
    def __init__(self, app: App, nursery: trio.Nursery, home: Path) -> None:
        self.app = app
        self.nursery = nursery
        self.home = home
        self.clients: list[Client] = []

    @property
    def threads(self) -> Threads:
        return self.app.threads

    def connect(self) -> Client:
        """A new connection, not yet initialized."""
        connection = Connection(
            Origin.WEBSOCKET, disconnectable=True, limits=QueueLimits(100_000, 1 << 30)
        )
        connection.tasks = self.nursery
        self.app.processor.connection_opened(connection)
        client = Client(self, connection)
        self.clients.append(client)
        return client

    async def client(
        self, *, experimental: bool = False, opt_out: list[str] | None = None
    ) -> Client:
        """A new connection that has completed `initialize`."""
        client = self.connect()
        await client.initialize(experimental=experimental, opt_out=opt_out)
        return client


# -- helpers over frames and common calls ------------------------------------------------------


def notifications(frames: list[Frame], method: str) -> list[Any]:
    """The params of each notification `method` among `frames`."""
    return [f["params"] for f in frames if f.get("method") == method and "id" not in f]


def completed_items(frames: list[Frame], item_type: str | None = None) -> list[dict[str, Any]]:
    items = [p["item"] for p in notifications(frames, "item/completed")]
    return [i for i in items if item_type is None or i["type"] == item_type]


def final_text(frames: list[Frame]) -> str:
    """The text of the turn's last completed agent message."""
    text: str = completed_items(frames, "agentMessage")[-1]["text"]
    return text


def completed_turn(frames: list[Frame]) -> dict[str, Any]:
    turn: dict[str, Any] = notifications(frames, "turn/completed")[-1]["turn"]
    return turn


async def start_thread(client: Client, **params: Any) -> str:
    result = await client.call("thread/start", params)
    thread_id: str = result["thread"]["id"]
    return thread_id


async def run_turn(client: Client, thread_id: str, message: str, **params: Any) -> list[Frame]:
    """turn/start with one text input, then every frame of the turn up to turn/completed."""
    await client.call("turn/start", {"threadId": thread_id, "input": text(message), **params})
    return await client.turn_frames(thread_id)


@asynccontextmanager
async def open_app(home: Path, agents: dict[str, Agent] | None = None) -> AsyncIterator[AppHarness]:
    """An app over `home/state.sqlite`; on exit running turns are cancelled and the store closed."""
    await trio.Path(home).mkdir(parents=True, exist_ok=True)
    store = StateStore.open(home / "state.sqlite")
    try:
        async with trio.open_nursery() as nursery:
            config = ServerConfig(listen=Stdio(), home=home)
            app = build_app(config, store, nursery, agents or load_agents(("echo",)))
            yield AppHarness(app, nursery, home)
            nursery.cancel_scope.cancel()
    finally:
        store.close()
