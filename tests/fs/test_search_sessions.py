"""One-shot searches over a large in-memory index: cancellation by token, index reuse."""

from __future__ import annotations

import time

import trio
import trio.testing

from appserver.fs.file_index import FileIndex, _prepare
from appserver.fs.search_sessions import FileSearches
from appserver.router import Router


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
