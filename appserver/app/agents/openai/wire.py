"""The two wire APIs, reduced to what the agent needs: a request body from a conversation, and
the events of one streamed response.

The conversation is kept in Chat Completions shape (`system`/`user`/`assistant` messages,
assistant `tool_calls`, `tool` results with `tool_call_id`); the Responses adapter converts it.
A parser's `feed(event)` returns `(text_delta, reasoning_delta)` for the hot path and collects
tool calls, usage and errors on the side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

Message = dict[str, Any]


@attrs.define
class ToolCall:
    call_id: str
    name: str
    arguments: str = ""


@attrs.define
class Usage:
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0


class StreamError(Exception):
    """The endpoint reported an error inside the stream."""


# -- Chat Completions ---------------------------------------------------------------------------


def chat_request(
    model: str,
    instructions: str,
    conversation: Sequence[Message],
    tools: Sequence[dict[str, Any]],
    output_schema: Any = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": instructions}, *conversation],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = [{"type": "function", "function": tool} for tool in tools]
    if output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_schema, "strict": False},
        }
    return body


class ChatParser:
    """One `chat.completion.chunk` stream."""

    def __init__(self) -> None:
        self._calls: dict[int, ToolCall] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [self._calls[i] for i in sorted(self._calls)]

    def feed(self, event: Any) -> tuple[str | None, str | None]:
        if not isinstance(event, dict):
            return None, None
        if "error" in event and not event.get("choices"):
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamError(str(message))
        usage = event.get("usage")
        if usage:
            details = usage.get("prompt_tokens_details") or {}
            completion = usage.get("completion_tokens_details") or {}
            self.usage = Usage(
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                int(details.get("cached_tokens") or 0),
                int(completion.get("reasoning_tokens") or 0),
            )
        choices = event.get("choices")
        if not choices:
            return None, None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        if not delta:
            return None, None
        calls = delta.get("tool_calls")
        if calls:
            self._add_calls(calls)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        return delta.get("content") or None, reasoning if isinstance(reasoning, str) else None

    def _add_calls(self, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            index = call.get("index", len(self._calls))
            function = call.get("function") or {}
            current = self._calls.get(index)
            if current is None:
                current = self._calls[index] = ToolCall(call.get("id") or f"call_{index}", "")
            elif call.get("id"):
                current.call_id = call["id"]
            current.name += function.get("name") or ""
            current.arguments += function.get("arguments") or ""


# -- Responses ----------------------------------------------------------------------------------


def responses_input(conversation: Sequence[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in conversation:
        role = message.get("role")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message.get("content") or "",
                }
            )
            continue
        if message.get("content"):
            items.append({"role": role, "content": message["content"]})
        for call in message.get("tool_calls") or ():
            function = call["function"]
            items.append(
                {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": function["name"],
                    "arguments": function["arguments"],
                }
            )
    return items


def responses_request(
    model: str,
    instructions: str,
    conversation: Sequence[Message],
    tools: Sequence[dict[str, Any]],
    output_schema: Any = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "instructions": instructions,
        "input": responses_input(conversation),
        "stream": True,
        "store": False,
    }
    if tools:
        body["tools"] = [{"type": "function", **tool} for tool in tools]
    if output_schema is not None:
        body["text"] = {
            "format": {"type": "json_schema", "name": "output", "schema": output_schema}
        }
    return body


class ResponsesParser:
    """One Responses API event stream."""

    def __init__(self) -> None:
        self.tool_calls: list[ToolCall] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def feed(self, event: Any) -> tuple[str | None, str | None]:
        if not isinstance(event, dict):
            return None, None
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return event.get("delta") or None, None
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return None, event.get("delta") or None
        if kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                self.tool_calls.append(
                    ToolCall(
                        item.get("call_id") or "",
                        item.get("name") or "",
                        item.get("arguments") or "",
                    )
                )
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            self.finish_reason = "tool_calls" if self.tool_calls else "stop"
            usage = response.get("usage")
            if usage:
                details = usage.get("input_tokens_details") or {}
                output = usage.get("output_tokens_details") or {}
                self.usage = Usage(
                    int(usage.get("input_tokens") or 0),
                    int(usage.get("output_tokens") or 0),
                    int(details.get("cached_tokens") or 0),
                    int(output.get("reasoning_tokens") or 0),
                )
        elif kind in ("response.failed", "error"):
            source = (event.get("response") or {}).get("error") or event.get("error") or event
            message = source.get("message") if isinstance(source, dict) else source
            raise StreamError(str(message or "the response failed"))
        return None, None
