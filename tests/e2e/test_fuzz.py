"""Fuzzing the real server over each transport (README "Wire rules"; codex-observed §2, §3).

One long-lived server per transport. Each hypothesis example feeds it arbitrary input: for
stdio, newline-terminated chunks of arbitrary bytes (and JSON-ish lines) on the one client's
stdin; for the sockets, on a fresh WebSocket connection per example, text frames of arbitrary
text, binary frames, pings, fragmented messages, JSON values and request-shaped objects with
real method names and plausible field names, optionally followed by raw garbage bytes and an
abrupt close. After every example:

- the server process is alive;
- the fuzzed connection answered a probe request sent after each of its frames (or
  fragmented messages); stdio: the same process answered a good request after each chunk;
- a well-behaved client on a separate connection gets the right answer to
  `windowsSandbox/readiness`;
- every reply the fuzz provoked is well-formed and is a result, `-32600` (bad request) or
  `-32001` (overloaded) — never `-32603`, which would mean a handler choked on its params.

Hypothesis runs in a worker thread and drives each example on the test's trio loop
(`trio.from_thread.run`), so the servers and connections outlive the examples. Examples share
the server, so they are not independent: shrinking is off, and a failure reports the last few
examples that ran before it. The time budget per transport is `APPSERVER_FUZZ_SECONDS`
(default 15 s, so the three robustness files stay under ~90 s together); once it is spent the
run stops (`BudgetSpent`), `MAX_EXAMPLES` bounding it too.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from tests.e2e.raw_frames import BINARY, CONTINUATION, PING, TEXT, ws_frame
from tests.e2e.transports import (
    INVALID_REQUEST,
    OVERLOADED,
    READINESS,
    READY,
    SOCKET_KINDS,
    Client,
    Closed,
    Kind,
    RawWebSocketClient,
    Server,
    encode,
    is_reply,
    request_message,
    serving,
    short_tempdir,
)

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = float(os.environ.get("APPSERVER_FUZZ_SECONDS", "15"))
MAX_EXAMPLES = 5000
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
    # Quiet: the budget's stop would be reported as a "failure" seed; a real failure reports
    # its examples itself (`Fuzzer.failure`).
    verbosity=Verbosity.quiet,
)
#: Error codes a fuzzed request may get; -32603 (a handler failure) is a bug on fuzzed input.
ALLOWED_ERRORS = {INVALID_REQUEST, OVERLOADED["code"]}
NOT_INITIALIZED = {"code": INVALID_REQUEST, "message": "Not initialized"}

METHODS = [
    "initialize",
    "account/read",
    "model/list",
    "config/read",
    "configRequirements/read",
    "collaborationMode/list",
    "skills/list",
    "hooks/list",
    "plugin/installed",
    "account/bedrock/checkGovCloudRequirements",
    "thread/start",
    "thread/resume",
    "thread/fork",
    "thread/read",
    "thread/list",
    "thread/loaded/list",
    "thread/archive",
    "thread/unarchive",
    "thread/delete",
    "thread/name/set",
    "thread/unsubscribe",
    "thread/turns/list",
    "thread/items/list",
    "thread/queue/add",
    "thread/goal/get",
    "thread/backgroundTerminals/list",
    "turn/start",
    "turn/interrupt",
    "turn/steer",
    READINESS,
    "mock/experimentalMethod",
]
FIELDS = [
    "threadId",
    "turnId",
    "expectedTurnId",
    "lastTurnId",
    "cwd",
    "model",
    "modelProvider",
    "limit",
    "cursor",
    "input",
    "text",
    "type",
    "name",
    "ephemeral",
    "archived",
    "includeTurns",
    "excludeTurns",
    "sortKey",
    "sortDirection",
    "searchTerm",
    "sourceKinds",
    "modelProviders",
    "outputSchema",
    "approvalPolicy",
    "sandbox",
    "clientInfo",
    "capabilities",
    "experimentalApi",
    "optOutNotificationMethods",
    "value",
    "clientUserMessageId",
    "itemsView",
]

# -- strategies ------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | texts
    | st.sampled_from(["", "text", "echo", "/tmp", "$ true", "never", "desc", "full"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | texts, children, max_size=4)
    ),
    max_leaves=12,
)
param_objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)
ids = st.integers(min_value=-(2**64), max_value=2**64) | texts | st.none() | st.floats()
requests = st.fixed_dictionaries(
    {"id": ids, "method": st.sampled_from(METHODS) | texts},
    optional={
        "params": param_objects | json_values,
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values,
        "trace": json_values,
        "result": json_values,
    },
)


def dump(value: Any) -> bytes:
    """JSON text of a value (NaN and infinities come out as non-JSON, which is fine here)."""
    return json.dumps(value, ensure_ascii=False).encode()


jsonish_payloads = st.one_of(requests.map(dump), json_values.map(dump))

#: One logical frame: a list of (opcode, payload, fin) wire frames.
Frames = list[tuple[int, bytes, bool]]


@st.composite
def fragmented(draw: st.DrawFn) -> Frames:
    payload = draw(jsonish_payloads | texts.map(str.encode))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), min_size=1, max_size=3)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    # A cut inside a multi-byte character is fine: UTF-8 is checked over the whole message.
    opcode = draw(st.sampled_from([TEXT, BINARY]))
    frames: Frames = []
    for n, piece in enumerate(pieces):
        frames.append((opcode if n == 0 else CONTINUATION, piece, n == len(pieces) - 1))
        if draw(st.booleans()) and n < len(pieces) - 1:
            frames.append((PING, draw(st.binary(max_size=16)), True))  # control frames interleave
    return frames


frame_groups: st.SearchStrategy[Frames] = st.one_of(
    texts.map(lambda t: [(TEXT, t.encode(), True)]),
    jsonish_payloads.map(lambda p: [(TEXT, p, True)]),
    st.binary(max_size=200).map(lambda b: [(BINARY, b, True)]),
    st.binary(max_size=125).map(lambda b: [(PING, b, True)]),
    fragmented(),
)


@attrs.frozen
class SocketExample:
    initialize: bool
    frames: list[Frames]
    #: Raw bytes sent after the frames, then the client vanishes (None: a clean close).
    tail: bytes | None


socket_examples = st.builds(
    SocketExample,
    initialize=st.booleans(),
    frames=st.lists(frame_groups, max_size=8),
    tail=st.none() | st.binary(max_size=40),
)
stdio_lines = st.lists(st.binary(max_size=200) | jsonish_payloads, max_size=8)


# -- the harness -----------------------------------------------------------------------------


class BudgetSpent(BaseException):
    """Raised through hypothesis to stop generating examples when the time budget is spent."""


class Fuzzer:
    """Bookkeeping shared by the examples of one transport: budget, probes, recent history."""

    def __init__(self, server: Server, observer: Client) -> None:
        self.server = server
        self.observer = observer
        self.deadline = time.monotonic() + BUDGET_SECONDS
        self.examples = 0
        self.recent: collections.deque[Any] = collections.deque(maxlen=4)
        self.replies = 0

    @property
    def over_budget(self) -> bool:
        return time.monotonic() > self.deadline

    def check_reply(self, message: dict[str, Any]) -> None:
        """A message the fuzz provoked: a reply must be a result or an allowed error."""
        if not is_reply(message):
            return
        self.replies += 1
        error = message.get("error")
        if error is not None:
            assert error.get("code") in ALLOWED_ERRORS, f"fuzzed request got {message}"

    def probe_id(self) -> str:
        return f"probe-{self.examples}-{os.urandom(4).hex()}"

    async def probe(self, client: Client, what: str, *, maybe_uninitialized: bool = False) -> None:
        request_id = self.probe_id()
        await client.send(request_message(request_id, READINESS))
        await self.expect(client, request_id, what, maybe_uninitialized=maybe_uninitialized)

    async def expect(
        self,
        client: Client,
        request_id: str,
        what: str,
        *,
        maybe_uninitialized: bool = False,
    ) -> None:
        """`client` answers the readiness probe `request_id` (or, if it may not have
        initialized, `Not initialized`); what it got meanwhile is checked and dropped."""
        with trio.fail_after(10):
            while True:
                try:
                    message = await client.next_message()
                except Closed as exc:
                    raise AssertionError(f"{what} was closed instead of answering") from exc
                if is_reply(message) and message.get("id") == request_id:
                    if maybe_uninitialized and message.get("error") == NOT_INITIALIZED:
                        return
                    assert message == {"id": request_id, "result": READY}, message
                    return
                self.check_reply(message)

    def failure(self, exc: BaseException) -> AssertionError:
        history = "\n".join(f"  {example!r}" for example in self.recent)
        return AssertionError(
            f"after {self.examples} examples: {exc!r}\nthe last examples, oldest first:\n"
            f"{history}\n{self.server.describe()}"
        )

    async def run(self, example: Any, body: Callable[[Any], Any]) -> None:
        self.examples += 1
        self.recent.append(example)
        try:
            await body(example)
            self.server.assert_alive()
            await self.probe(self.observer, "the well-behaved client")
            self.server.assert_alive()
        except (AssertionError, trio.TooSlowError, OSError) as exc:
            raise self.failure(exc) from exc


async def fuzz(fuzzer: Fuzzer, strategy: st.SearchStrategy[Any], body: Callable[..., Any]) -> None:
    """Run hypothesis over `strategy` in a worker thread, each example on this trio loop.

    Once the budget is spent, the next example raises `BudgetSpent`, which hypothesis does
    not take for a failure and lets through: that ends the run."""

    @FUZZ_SETTINGS
    @given(strategy)
    def examples(example: Any) -> None:
        if fuzzer.over_budget:
            raise BudgetSpent
        trio.from_thread.run(fuzzer.run, example, body)

    try:
        await trio.to_thread.run_sync(examples)
    except BudgetSpent:
        pass
    assert fuzzer.examples > 0
    assert fuzzer.server.alive


@pytest.fixture
def home() -> Iterator[Path]:
    with short_tempdir("asf-") as tmp:
        yield tmp / "home"


async def abort(client: RawWebSocketClient) -> None:
    stream = client.stream
    if isinstance(stream, trio.SocketStream) and stream.socket.family == socket.AF_INET:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.aclose()


@pytest.mark.parametrize("transport", SOCKET_KINDS)
async def test_fuzzed_websocket_frames_never_hurt_the_server(transport: Kind, home: Path) -> None:
    async with serving(transport, home) as server:
        observer = await server.raw_websocket()
        await observer.initialize()
        fuzzer = Fuzzer(server, observer)

        async def body(example: SocketExample) -> None:
            client = await server.raw_websocket()
            try:
                if example.initialize:
                    await client.initialize()
                # A probe after every frame (or fragmented message): none of them may end the
                # connection, and it answers each probe, in order.
                data, probes = bytearray(), []
                for group in example.frames:
                    for opcode, payload, fin in group:
                        data += ws_frame(opcode, payload, fin=fin)
                    probes.append(fuzzer.probe_id())
                    data += ws_frame(TEXT, encode(request_message(probes[-1], READINESS)))
                await client.send_raw(bytes(data))
                for request_id in probes:
                    await fuzzer.expect(
                        client, request_id, "the fuzzed connection", maybe_uninitialized=True
                    )
                for message in client.skipped:
                    fuzzer.check_reply(message)
                if example.tail is not None:
                    await client.send_raw(example.tail)
                    await abort(client)
            finally:
                await client.aclose()

        await fuzz(fuzzer, socket_examples, body)
        await observer.aclose()
    print(f"{transport}: {fuzzer.examples} examples, {fuzzer.replies} replies checked")


async def test_fuzzed_stdio_lines_never_hurt_the_server(home: Path) -> None:
    async with serving("stdio", home) as server:
        client = server.stdio()
        await client.initialize()
        fuzzer = Fuzzer(server, client)

        async def body(lines: list[bytes]) -> None:
            # A probe after every chunk: the same process answers each, in order.
            data, probes = bytearray(), []
            for line in lines:
                probes.append(fuzzer.probe_id())
                data += line + b"\n" + encode(request_message(probes[-1], READINESS)) + b"\n"
            await client.write(bytes(data))
            for request_id in probes:
                await fuzzer.expect(client, request_id, "the stdio session")

        await fuzz(fuzzer, stdio_lines, body)
        for message in client.skipped:
            fuzzer.check_reply(message)
        assert await server.stop() == 0
    print(f"stdio: {fuzzer.examples} examples, {fuzzer.replies} replies checked")
