"""A scripted OpenAI-compatible model for driving the real TUI against `--agent openai`.

    python -m tests.peers.scripted_model PORT_FILE

Serves tests/fake_openai.py's endpoint on 127.0.0.1 (the port is written to PORT_FILE) and
answers by what each request asks, so the TUI's own side requests (titles, recaps) never
consume the scripted conversation:
- a request with `response_format` (a side turn): JSON built from its schema;
- Codex's compaction prompt: a summary;
- a user's message: a plan (`update_plan`), with a line of text first;
- after the plan: `shell` asking for escalated permissions (so the TUI asks);
- after the command: `apply_patch` adding `greeting.txt` (outside a read-only sandbox: asked);
- after the patch: the final answer.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import orjson
import trio

from appserver.app.agents.echo import minimal_instance
from tests.fake_openai import FakeOpenAI, Request, stream, text_chunks
from tests.fake_openai import tool_stream as tool

PATCH = "*** Begin Patch\n*** Add File: greeting.txt\n+hello from the model\n*** End Patch\n"
PLAN = [
    {"step": "Check the workspace", "status": "in_progress"},
    {"step": "Write greeting.txt", "status": "pending"},
]
FINAL = "All done: greeting.txt is written."
SUMMARY = "Summary: the model checked the workspace and wrote greeting.txt."


def reply_for(body: dict[str, Any]) -> Any:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if body.get("response_format"):
        schema = body["response_format"].get("json_schema", {}).get("schema", {})
        return stream(text_chunks(_json(minimal_instance(schema, "Model flow"))))
    if last.get("role") == "user" and "CONTEXT CHECKPOINT COMPACTION" in str(last.get("content")):
        return stream(text_chunks(SUMMARY))
    if last.get("role") == "tool":
        called = _tool_name(messages, last.get("tool_call_id"))
        if called == "update_plan":
            arguments = {
                "command": ["echo", "workspace-checked"],
                "with_escalated_permissions": True,
                "justification": "check the workspace",
            }
            return tool("shell", arguments)
        if called == "shell":
            return tool("apply_patch", {"input": PATCH})
        return stream(text_chunks(FINAL))
    return tool("update_plan", {"plan": PLAN, "explanation": "Two steps."})


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _tool_name(messages: list[dict[str, Any]], call_id: Any) -> str | None:
    # Every scripted call has the same id: the latest call with it is the one answered.
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if call.get("id") == call_id:
                return str(call["function"]["name"])
    return None


class ScriptedModel(FakeOpenAI):
    async def _respond(self, sock: trio.SocketStream, conn: Any, req: Request) -> None:
        if req.method == "POST" and isinstance(req.body, dict):
            self.replies[:] = [reply_for(req.body)]
        await super()._respond(sock, conn, req)


async def main(port_file: Path) -> None:
    model = ScriptedModel()
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, model.handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        await trio.Path(port_file).write_text(f"{listeners[0].socket.getsockname()[1]}\n")


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
