"""What an operator reads at INFO (issue 13 item 14): turns start and finish with status and
duration, approvals asked and answered."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tests.app.app_harness import AppHarness, open_app, run_turn, start_thread, text


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    async with open_app(tmp_path / "home") as harness:
        yield harness


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


async def test_a_turn_is_logged_when_it_starts_and_when_it_ends(
    app: AppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = await app.client()
    thread_id = await start_thread(client)
    await run_turn(client, thread_id, "hello")
    lines = info_lines(caplog)
    started = [
        line for line in lines if re.search(rf"turn \S+ started in thread {thread_id}", line)
    ]
    ended = [
        line
        for line in lines
        if re.search(rf"turn \S+ completed in thread {thread_id} after \d+ ms", line)
    ]
    assert len(started) == 1, lines
    assert len(ended) == 1, lines
    assert "agent echo" in started[0]


async def test_approvals_are_logged_when_asked_and_when_answered(
    app: AppHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = await app.client()
    thread_id = await start_thread(client, cwd="/tmp")
    await client.call("turn/start", {"threadId": thread_id, "input": text("$ true")})
    request = await client.server_request("item/commandExecution/requestApproval")
    await client.reply(request["id"], {"decision": "decline"})
    await client.turn_frames(thread_id)
    lines = info_lines(caplog)
    asked = rf"asking connection\(s\) \[{client.id}\]: item/commandExecution/requestApproval"
    assert any(re.search(asked, line) for line in lines), lines
    answered = f"connection {client.id} answered item/commandExecution/requestApproval"
    assert any(answered in line and "decline" in line for line in lines), lines
