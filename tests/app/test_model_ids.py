"""Any model id is accepted and echoed back, as Codex does: the agent named by it answers, or
the agent whose `model/list` offered it, else the default agent, which sees the id as
`turn.model`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appserver.app.agents import Turn
from appserver.app.agents.echo import EchoAgent
from tests.app.app_harness import AppHarness, final_text, open_app, run_turn, start_thread


class ModelEcho:
    """Answers with the model id it was given."""

    name = "model-echo"
    display_name = "Model echo"
    description = "Says which model id the turn carries."

    async def run_turn(self, turn: Turn) -> None:
        await turn.say(f"model={turn.model}", chunks=1)


class Lister(ModelEcho):
    """Offers two models of its own in `model/list`."""

    name = "lister"

    async def run_turn(self, turn: Turn) -> None:
        await turn.say(f"lister model={turn.model}", chunks=1)

    async def list_models(self) -> tuple[list[str], str | None]:
        return ["listed-a", "listed-b"], "listed-b"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[AppHarness]:
    agents = {"model-echo": ModelEcho(), "echo": EchoAgent(), "lister": Lister()}
    async with open_app(tmp_path, agents) as app:  # type: ignore[arg-type]
        yield app


async def test_an_unknown_model_id_is_echoed_and_reaches_the_default_agent(app: AppHarness):
    client = await app.client()
    started = await client.call("thread/start", {"model": "gpt-9-imaginary"})
    assert started["model"] == "gpt-9-imaginary"
    thread_id = started["thread"]["id"]
    assert final_text(await run_turn(client, thread_id, "hi")) == "model=gpt-9-imaginary"
    assert client.assert_schema_valid()


async def test_resume_and_turn_start_change_the_model_id(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client)
    resumed = await client.call("thread/resume", {"threadId": thread_id, "model": "other-id"})
    assert resumed["model"] == "other-id"
    frames = await run_turn(client, thread_id, "hi", model="third-id")
    assert final_text(frames) == "model=third-id"
    again = await client.call("thread/resume", {"threadId": thread_id})
    assert again["model"] == "third-id"


async def test_a_model_id_naming_an_agent_picks_that_agent(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client, model="echo")
    assert final_text(await run_turn(client, thread_id, "hi")) == "You said: hi"


async def test_without_a_model_the_default_agent_answers_under_its_name(app: AppHarness):
    client = await app.client()
    started = await client.call("thread/start", {})
    assert started["model"] == "model-echo"
    assert final_text(await run_turn(client, started["thread"]["id"], "x")) == "model=model-echo"


async def test_models_an_agent_lists_are_listed_and_routed_to_it(app: AppHarness) -> None:
    client = await app.client()
    listed = await client.call("model/list", {})
    ids = [m["id"] for m in listed["data"]]
    assert ids == ["model-echo", "echo", "listed-a", "listed-b"]
    # The default agent's default; a listing agent's default counts only if it is the default.
    assert [m["id"] for m in listed["data"] if m["isDefault"]] == ["model-echo"]
    thread_id = await start_thread(client, model="listed-a")
    frames = await run_turn(client, thread_id, "hi")
    assert final_text(frames) == "lister model=listed-a"
    assert client.assert_schema_valid()
