"""The example agents' side paths in process (their main paths run end to end in
tests/e2e/test_agent_items_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

from examples.ask_agent import AskAgent
from examples.patch_agent import PatchAgent
from examples.tool_agent import ToolAgent
from tests.app.app_harness import completed_turn, final_text, open_app, run_turn, start_thread

TITLE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 12}},
    "required": ["title"],
    "additionalProperties": False,
}


async def test_the_ask_agent_answers_a_title_side_turn_within_the_schema(tmp_path: Path) -> None:
    async with open_app(tmp_path, {"asker": AskAgent()}) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, ephemeral=True)
        prompt = "Generate a concise title for this task.\nFix the flaky socket test"
        frames = await run_turn(client, thread_id, prompt, outputSchema=TITLE_SCHEMA)
        assert completed_turn(frames)["status"] == "completed"
        assert json.loads(final_text(frames)) == {"title": "Fix the flak"}
        assert client.received("item/tool/requestUserInput") == []


async def test_the_patch_agent_fails_the_turn_when_the_patch_does_not_apply(
    tmp_path: Path,
) -> None:
    async with open_app(tmp_path / "home", {"patcher": PatchAgent()}) as app:
        client = await app.client()
        thread_id = await start_thread(client, cwd=str(tmp_path))
        frames = await run_turn(client, thread_id, "append missing.txt: x")
        turn = completed_turn(frames)
        assert turn["status"] == "failed"
        assert turn["error"]["message"].startswith(
            "the patch did not apply: Failed to read file to update"
        )
        client.assert_schema_valid()


async def test_the_tool_agent_lists_tools_when_none_is_named(tmp_path: Path) -> None:
    async with open_app(tmp_path, {"tools": ToolAgent()}) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        frames = await run_turn(client, thread_id, "what can you do")
        assert final_text(frames) == "Tools: none registered."
