"""Searches over a large in-memory index: cancellation by token, index reuse, a session's
streamed snapshots."""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.testing

from appserver.fs.file_index import FileIndex, _prepare
from appserver.fs.file_search import QueryRun
from appserver.fs.search_sessions import COMPLETED, UPDATED, FileSearches
from appserver.router import Router
from appserver.wire.messages import Notification
from tests.fs.test_file_search import index_of


def synthetic_index(root: str, count: int) -> FileIndex:
    paths = [f"pkg{i % 97}/module{i}/handler_{i}.py" for i in range(count)]
    index = FileIndex(root, paths, [False] * count)
    _prepare(index)
    return index


async def test_a_newer_request_with_the_same_token_cancels_the_running_one() -> None:
    async with trio.open_nursery() as nursery:
        searches = FileSearches(Router(), nursery)
        searches._cache["/big"] = (
            time.monotonic() + 3600,
            synthetic_index("/big", 60_000),
        )
        answers: dict[str, list[object]] = {}

        async def ask(name: str, query: str) -> None:
            answers[name] = await searches.search(query, ["/big"], "token")

        nursery.start_soon(ask, "older", "handler")
        await trio.testing.wait_all_tasks_blocked()  # the older one is scoring in a thread
        await ask("newer", "module1")
    assert answers["older"] == []
    assert len(answers["newer"]) == 50
    assert "pkg1/module1/handler_1.py" in [f["path"] for f in answers["newer"]]  # type: ignore[index]


async def test_searches_without_a_token_do_not_cancel_each_other() -> None:
    async with trio.open_nursery() as nursery:
        searches = FileSearches(Router(), nursery)
        searches._cache["/big"] = (
            time.monotonic() + 3600,
            synthetic_index("/big", 5_000),
        )
        answers: list[list[object]] = []

        async def ask() -> None:
            answers.append(await searches.search("handler", ["/big"], None))

        for _ in range(2):
            nursery.start_soon(ask)
    assert [len(a) for a in answers] == [50, 50]


class RecordingRouter(Router):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Notification] = []
        self.completed = trio.Event()

    async def send(self, connection_id: int, message: Any, receipt: Any = None) -> None:
        self.sent.append(message)
        if message.method == COMPLETED:
            self.completed.set()


async def test_a_session_streams_early_results_and_ends_with_the_one_shot_answer() -> None:
    # Only paths match `zq`; the best match is listed after several chunks of other entries.
    files = [f"z{i}/q{i}.txt" for i in range(400)] + [f"pkg{i}/mod{i}.py" for i in range(40_000)]
    index = index_of("/big", [*files, "zqx/a.txt"])
    router = RecordingRouter()
    async with trio.open_nursery() as nursery:
        searches = FileSearches(router, nursery)
        searches._cache["/big"] = (time.monotonic() + 3600, index)
        searches.start(1, "s", ["/big"])
        session = searches._sessions[(1, "s")]
        session.indexes.append(index)
        session.ready.set()
        for query in ("a", "zq"):  # the second cancels the first
            await searches.run_update(searches.update(1, "s", query), query)
        await router.completed.wait()
        one_shot = await searches.search("zq", ["/big"], None)
    assert [m.method for m in router.sent].count(COMPLETED) == 1
    updates = [m.params for m in router.sent if m.method == UPDATED]
    assert {u["query"] for u in updates} <= {"a", "zq"}
    queries = [u["query"] for u in updates]
    assert "a" not in queries[queries.index("zq") :]
    streamed = [u["files"] for u in updates if u["query"] == "zq"]
    assert len(streamed) >= 2
    assert all(streamed)  # no empty snapshot
    assert "zqx" not in [f["path"] for f in streamed[0]]  # sent before the scan reached it
    assert streamed[-1] == one_shot == QueryRun("zq", [index]).run()
    assert one_shot[0]["path"] == "zqx"
