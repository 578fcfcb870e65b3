"""Default implementations of the optional agent hooks (`Agent.compact`, `Agent.review`).

An agent that defines the hook itself is called instead; these defaults need no model: the
compaction summary is built from the history's own messages, the review lists what the diff
touches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from appserver.app.agents.base import Agent, Turn

SUMMARY_LINE_CHARS: Final = 200
SUMMARY_MAX_LINES: Final = 40


def _item_line(item: dict[str, Any]) -> str | None:
    kind = item.get("type")
    if kind == "userMessage":
        parts = [str(c.get("text", "")) for c in item.get("content", []) if c.get("type") == "text"]
        text = " ".join(parts)
        label = "user"
    elif kind == "agentMessage":
        text, label = str(item.get("text", "")), "assistant"
    elif kind == "commandExecution":
        text = f"{item.get('command', '')} (exit {item.get('exitCode')})"
        label = "command"
    elif kind == "exitedReviewMode":
        text, label = str(item.get("review", "")), "review"
    else:
        return None
    text = " ".join(text.split())
    if len(text) > SUMMARY_LINE_CHARS:
        text = text[: SUMMARY_LINE_CHARS - 1] + "…"
    return f"- {label}: {text}" if text else None


def summarize(previous: str | None, history: Sequence[dict[str, Any]]) -> str:
    """A plain-text summary: the previous summary, then one line per message or command."""
    lines = [
        line for turn in history for item in turn.get("items", []) if (line := _item_line(item))
    ]
    if len(lines) > SUMMARY_MAX_LINES:
        dropped = len(lines) - SUMMARY_MAX_LINES
        lines = [f"- ({dropped} earlier entries omitted)", *lines[-SUMMARY_MAX_LINES:]]
    parts = []
    if previous:
        parts.append(previous)
    parts.append(f"Summary of {len(history)} earlier turn(s):")
    parts.extend(lines or ["- (nothing to summarize)"])
    return "\n".join(parts)


async def default_compact(turn: Turn) -> str:
    return summarize(turn.compaction_summary, turn.history)


def diff_files(diff: str) -> list[tuple[str, int, int]]:
    """(path, lines added, lines removed) for each file of a unified git diff."""
    files: list[tuple[str, int, int]] = []
    path, added, removed = None, 0, 0
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            if path is not None:
                files.append((path, added, removed))
            path, added, removed = line.split(" b/", 1)[-1], 0, 0
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    if path is not None:
        files.append((path, added, removed))
    return files


def _diff_of(turn: Turn) -> str:
    texts = [str(i.get("text", "")) for i in turn.input if i.get("type") == "text"]
    return "\n".join(texts[1:])


async def default_review(turn: Turn, target: dict[str, Any]) -> str:
    if target.get("type") == "custom":
        return f"Review requested: {str(target.get('instructions', '')).strip()}\n\nNo findings."
    files = diff_files(_diff_of(turn))
    if not files:
        return "No changes to review."
    lines = [f"The changes touch {len(files)} file(s):"]
    lines += [f"- {path} (+{added} -{removed})" for path, added, removed in files]
    lines.append("No findings.")
    return "\n".join(lines)


def compact_hook(agent: Agent) -> Callable[[Turn], Awaitable[str]]:
    hook: Callable[[Turn], Awaitable[str]] | None = getattr(agent, "compact", None)
    return hook if callable(hook) else default_compact


def review_hook(agent: Agent) -> Callable[[Turn, dict[str, Any]], Awaitable[str]]:
    hook: Callable[[Turn, dict[str, Any]], Awaitable[str]] | None = getattr(agent, "review", None)
    return hook if callable(hook) else default_review
