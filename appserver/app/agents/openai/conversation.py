"""The thread's history as Chat Completions messages.

Earlier turns come from `Turn.history` (Codex `Turn` JSON with items): user messages, agent
messages, and the agent's tool work as assistant `tool_calls` followed by `tool` results
(`commandExecution` as a `shell` call with its output, `fileChange` as an `apply_patch` call
with its outcome). After a compaction the summary comes first and stands for everything before
it. Reasoning and other items are not sent back.

Items a client injected (`thread/inject_items`: raw Responses API items) go where they were
added, after the turn that preceded them: `message` items as messages (`developer` as `system`,
which every Chat Completions endpoint takes), a `function_call` with its `function_call_output`
as a tool call with its result; anything else, or a call without its output, is left out.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from appserver.app.agents.openai.tools import format_output

Message = dict[str, Any]

SUMMARY_PREFIX = "Another language model started this conversation; here is its summary of it:"


def user_content(items: Sequence[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """User input items as message content: a string, or parts when there are images."""
    texts = [str(i.get("text", "")) for i in items if i.get("type") == "text"]
    images = [url for i in items if (url := _image_url(i))]
    if not images:
        return "\n".join(texts)
    parts: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return parts


def _image_url(item: dict[str, Any]) -> str | None:
    if item.get("type") == "image" and isinstance(item.get("url"), str):
        return str(item["url"])
    if item.get("type") == "localImage" and isinstance(item.get("path"), str):
        path = Path(item["path"])
        try:
            data = path.read_bytes()
        except OSError:
            return None
        mime = mimetypes.guess_type(path.name)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return None


def history_messages(
    history: Sequence[dict[str, Any]],
    summary: str | None,
    injected: Sequence[tuple[str | None, dict[str, Any]]] = (),
) -> list[Message]:
    messages: list[Message] = []
    if summary:
        messages.append({"role": "user", "content": f"{SUMMARY_PREFIX}\n\n{summary}"})
    turn_ids = {turn.get("id") for turn in history}
    after: dict[str | None, list[dict[str, Any]]] = {}
    for turn_id, item in injected:
        # Injected before the first turn shown (or before a compaction): at the start.
        after.setdefault(turn_id if turn_id in turn_ids else None, []).append(item)
    _add_injected(messages, after.get(None, ()))
    for turn in history:
        for item in turn.get("items") or ():
            _add_item(messages, item)
        _add_injected(messages, after.get(turn.get("id"), ()))
    return messages


def _add_injected(messages: list[Message], items: Sequence[dict[str, Any]]) -> None:
    outputs = {
        item.get("call_id"): item.get("output")
        for item in items
        if item.get("type") == "function_call_output"
    }
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in INJECTED_ROLES:
            text = _injected_text(item.get("content"))
            if text:
                messages.append({"role": INJECTED_ROLES[item["role"]], "content": text})
        elif kind == "function_call" and item.get("call_id") in outputs:
            output = outputs[item["call_id"]]
            result = output if isinstance(output, str) else orjson.dumps(output).decode()
            arguments = item.get("arguments")
            try:
                parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
            except orjson.JSONDecodeError:
                parsed = arguments
            _add_call(messages, str(item["call_id"]), str(item.get("name", "")), parsed, result)


#: Responses API message roles, as Chat Completions takes them.
INJECTED_ROLES = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}


def _injected_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        str(part.get("text", ""))
        for part in content
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text")
    )


def _add_item(messages: list[Message], item: dict[str, Any]) -> None:
    kind = item.get("type")
    if kind == "userMessage":
        messages.append({"role": "user", "content": user_content(item.get("content") or [])})
    elif kind == "agentMessage" and item.get("text"):
        messages.append({"role": "assistant", "content": item["text"]})
    elif kind == "commandExecution" and item.get("source", "agent") == "agent":
        arguments = {"command": ["bash", "-lc", item.get("command", "")]}
        if item.get("status") == "declined":
            result = "exec command rejected by user"
        else:
            output = item.get("aggregatedOutput") or ""
            duration = (item.get("durationMs") or 0) / 1000
            result = format_output(output, item.get("exitCode"), duration)
        _add_call(messages, item["id"], "shell", arguments, result)
    elif kind == "fileChange":
        paths = [c.get("path", "") for c in item.get("changes") or ()]
        patch = {"input": "\n".join(c.get("diff", "") for c in item.get("changes") or ())}
        status = item.get("status")
        result = (
            "Success. Updated the following files:\n" + "\n".join(paths)
            if status == "completed"
            else "patch rejected by user"
            if status == "declined"
            else "patch failed"
        )
        _add_call(messages, item["id"], "apply_patch", patch, result)


def _add_call(
    messages: list[Message], call_id: str, name: str, arguments: Any, result: str
) -> None:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
