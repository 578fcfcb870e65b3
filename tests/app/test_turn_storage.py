"""A turn whose state cannot be written is never reported complete (issue 13, item 1).

The store is real; only its turn writes are made to fail, as a full disk makes them fail
(`sqlite3.OperationalError: database or disk is full`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from appserver.app import thread_state
from appserver.app.thread_state import ItemRecord, ThreadState, TurnState
from tests.app.app_harness import (
    AppHarness,
    completed_turn,
    notifications,
    open_app,
    run_turn,
    start_thread,
)

DISK_FULL = "database or disk is full"


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    async with open_app(tmp_path / "home") as harness:
        yield harness


def failing_when(monkeypatch: pytest.MonkeyPatch, fails: Callable[[TurnState], bool]) -> list[str]:
    """Make `save_turn` raise a disk-full error whenever `fails(turn)`; returns the failed ids."""
    real = thread_state.save_turn
    failed: list[str] = []

    def save_turn(
        db: sqlite3.Connection,
        thread: ThreadState,
        turn: TurnState,
        ahead: Sequence[ItemRecord] = (),
    ) -> None:
        if fails(turn):
            failed.append(turn.id)
            raise sqlite3.OperationalError(DISK_FULL)
        real(db, thread, turn, ahead)

    monkeypatch.setattr(thread_state, "save_turn", save_turn)
    monkeypatch.setattr("appserver.app.threads.save_turn", save_turn)
    return failed


async def test_a_turn_whose_final_save_fails_is_reported_failed(
    app: AppHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await app.client()
    thread_id = await start_thread(client)
    failed = failing_when(monkeypatch, lambda turn: turn.completed_at is not None)
    frames = await run_turn(client, thread_id, "hello")
    turn = completed_turn(frames)
    assert failed, "the final save was never attempted"
    assert turn["status"] == "failed", turn
    assert DISK_FULL in turn["error"]["message"]
    errors = notifications(frames, "error")
    assert len(errors) == 1
    assert errors[0]["turnId"] == turn["id"]
    assert errors[0]["willRetry"] is False
    assert DISK_FULL in errors[0]["error"]["message"]
    # What the client was told matches what a restart reads back: not completed.
    monkeypatch.undo()
    on_disk = await app.threads.store.run(thread_state.load_thread, thread_id)
    assert on_disk is not None
    assert on_disk.turns[-1].status != "completed"
    # The thread is usable afterwards.
    again = completed_turn(await run_turn(client, thread_id, "again"))
    assert again["status"] == "completed"
    assert client.assert_schema_valid() > 0


async def test_a_failed_turn_whose_final_save_fails_is_still_reported_once(
    app: AppHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure that ended the turn (its first item could not be saved) is reported; the
    final save failing too adds no second `turn/completed` or `error`."""
    client = await app.client()
    thread_id = await start_thread(client)
    failing_when(monkeypatch, lambda turn: bool(turn.items))
    frames = await run_turn(client, thread_id, "hello")
    assert len(notifications(frames, "turn/completed")) == 1
    assert len(notifications(frames, "error")) == 1
    assert completed_turn(frames)["status"] == "failed"
    assert client.assert_schema_valid() > 0
