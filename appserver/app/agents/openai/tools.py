"""The function tools offered to the model, modelled on Codex's own (codex-rs/core/src/tools):
`shell` (argv `command`, `workdir`, `timeout_ms` (enforced when the command runs without
asking), `with_escalated_permissions`, `justification`), `apply_patch` (Codex's patch format,
as the JSON `input` of the function variant) and `update_plan`. Each handler returns the text
sent back to the model as the `tool` message for the call.

Approval of `shell` follows the thread's approval policy with Codex's rules:

- `untrusted`: commands known to be safe (`safety.is_known_safe_command`) run at once; any
  other is asked about first;
- `on-request`: runs without asking, unless the model asks for escalated permissions;
- `on-failure`: runs without asking; if it fails, the user is asked whether to run it again;
- `never`: never asks.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from collections.abc import Sequence
from typing import Any, Final

import orjson
import trio

from appserver.app.agents.base import PlanStep, Turn
from appserver.app.agents.openai.safety import display_command, is_known_safe_command

#: What the model gets back at most from one command (Codex truncates similarly).
MAX_OUTPUT_CHARS: Final = 16 * 1024

SHELL_TOOL: Final[dict[str, Any]] = {
    "name": "shell",
    "description": "Runs a shell command and returns its output.",
    "parameters": {
        "type": "object",
        "properties": {
            "command": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The command to execute",
            },
            "workdir": {
                "type": "string",
                "description": "The working directory to execute the command in",
            },
            "timeout_ms": {
                "type": "number",
                "description": "The timeout for the command in milliseconds",
            },
            "with_escalated_permissions": {
                "type": "boolean",
                "description": "Whether to request escalated permissions. Set to true if "
                "command needs to be run without sandbox restrictions",
            },
            "justification": {
                "type": "string",
                "description": "Only set if with_escalated_permissions is true. 1-sentence "
                "explanation of why we want to run this command.",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    },
}

APPLY_PATCH_TOOL: Final[dict[str, Any]] = {
    "name": "apply_patch",
    "description": (
        "Use the `apply_patch` tool to edit files.\n"
        "Your patch language is a stripped-down, file-oriented diff format designed to be easy "
        "to parse and safe to apply. You can think of it as a high-level envelope:\n\n"
        "*** Begin Patch\n[ one or more file sections ]\n*** End Patch\n\n"
        "Within that envelope, you get a sequence of file operations. Each operation starts "
        "with one of three headers:\n\n"
        "*** Add File: <path> - create a new file. Every following line is a + line.\n"
        "*** Delete File: <path> - remove an existing file. Nothing follows.\n"
        "*** Update File: <path> - patch an existing file in place (optionally with a rename: "
        "*** Move to: <new path>).\n\n"
        "An update has one or more hunks, each introduced by @@ (optionally followed by a "
        "class or function name to locate it); within a hunk each line starts with ' ' "
        "(context), '-' (removed) or '+' (added). Show 3 lines of context around each change. "
        "File paths must be relative, never absolute."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "input": {
                "type": "string",
                "description": "The entire contents of the apply_patch command",
            }
        },
        "required": ["input"],
        "additionalProperties": False,
    },
}

UPDATE_PLAN_TOOL: Final[dict[str, Any]] = {
    "name": "update_plan",
    "description": (
        "Updates the task plan.\nProvide an optional explanation and a list of plan items, "
        "each with a step and status.\nAt most one step can be in_progress at a time."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "explanation": {"type": "string"},
            "plan": {
                "type": "array",
                "description": "The list of steps",
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "string"},
                        "status": {
                            "type": "string",
                            "description": "One of: pending, in_progress, completed",
                        },
                    },
                    "required": ["step", "status"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["plan"],
        "additionalProperties": False,
    },
}

TOOLS: Final = (SHELL_TOOL, APPLY_PATCH_TOOL, UPDATE_PLAN_TOOL)
PLAN_STATUSES: Final = {"pending": "pending", "in_progress": "inProgress", "completed": "completed"}


class ToolError(Exception):
    """Bad arguments from the model: the message goes back to it as the tool's output."""


def parse_arguments(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise ToolError(f"failed to parse function arguments: {exc}") from exc
    if not isinstance(value, dict):
        raise ToolError("function arguments must be a JSON object")
    return value


async def call_tool(turn: Turn, name: str, arguments: str) -> str:
    """Run one tool call; the text for the model."""
    try:
        args = parse_arguments(arguments)
        if name == "shell":
            return await shell(turn, args)
        if name == "apply_patch":
            return await apply_patch(turn, args)
        if name == "update_plan":
            return await update_plan(turn, args)
        raise ToolError(f"unsupported call: {name}")
    except ToolError as exc:
        return str(exc)


def shell_argv(args: dict[str, Any]) -> list[str]:
    command = args.get("command")
    if isinstance(command, str):
        # Some models send a string although the schema says array: run it as a script.
        return ["bash", "-lc", command]
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise ToolError("`command` must be a non-empty array of strings")
    return list(command)


def needs_approval(policy: str, argv: Sequence[str], escalated: bool) -> bool:
    """Whether to ask before the first run (Codex's rules; `on-failure` asks only on a rerun)."""
    if policy == "never":
        return False
    if policy == "untrusted":
        return not is_known_safe_command(argv)
    if policy == "on-request":
        return escalated
    return False


async def shell(turn: Turn, args: dict[str, Any]) -> str:
    argv = shell_argv(args)
    command = display_command(argv)
    workdir = args.get("workdir")
    if isinstance(workdir, str) and workdir:
        directory = posixpath.normpath(posixpath.join(turn.cwd, workdir))
        if directory != turn.cwd:
            command = f"cd {shlex.quote(directory)} && {command}"
    escalated = bool(args.get("with_escalated_permissions"))
    justification = args.get("justification") if escalated else None
    policy = _policy(turn)
    ask = needs_approval(policy, argv, escalated)
    reason = justification if isinstance(justification, str) else None
    timeout_ms = args.get("timeout_ms")
    started = time.monotonic()
    if isinstance(timeout_ms, int | float) and timeout_ms > 0 and not ask:
        # Enforced only when nobody is asked: the limit is for the command, not the user.
        with trio.move_on_after(timeout_ms / 1000) as limit:
            outcome = await turn.run_command(command, reason=reason, ask=False)
        if limit.cancelled_caught:
            payload = {
                "output": f"command timed out after {int(timeout_ms)} ms",
                "metadata": {"exit_code": None, "duration_seconds": round(timeout_ms / 1000, 1)},
            }
            return orjson.dumps(payload).decode()
    else:
        outcome = await turn.run_command(command, reason=reason, ask=ask)
    if not outcome.declined and outcome.exit_code not in (0, None) and policy == "on-failure":
        retry = await turn.run_command(
            command, reason="command failed; retry without sandbox?", ask=True
        )
        if not retry.declined:
            outcome = retry
    if outcome.declined:
        return "exec command rejected by user"
    return format_output(outcome.output, outcome.exit_code, time.monotonic() - started)


def format_output(output: str, exit_code: int | None, seconds: float) -> str:
    """Codex's structured shell output for the model."""
    if len(output) > MAX_OUTPUT_CHARS:
        half = MAX_OUTPUT_CHARS // 2
        omitted = len(output) - MAX_OUTPUT_CHARS
        output = f"{output[:half]}\n[... omitted {omitted} characters ...]\n{output[-half:]}"
    payload = {
        "output": output,
        "metadata": {"exit_code": exit_code, "duration_seconds": round(seconds, 1)},
    }
    return orjson.dumps(payload).decode()


async def apply_patch(turn: Turn, args: dict[str, Any]) -> str:
    patch = args.get("input")
    if not isinstance(patch, str):
        raise ToolError("`input` must be the patch text")
    outcome = await turn.apply_patch(patch)
    if outcome.declined:
        return "patch rejected by user"
    return outcome.output


async def update_plan(turn: Turn, args: dict[str, Any]) -> str:
    plan = args.get("plan")
    if not isinstance(plan, list):
        raise ToolError("`plan` must be an array of {step, status}")
    steps = []
    for entry in plan:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), str):
            raise ToolError("each plan item needs a `step` string and a `status`")
        status = PLAN_STATUSES.get(str(entry.get("status")))
        if status is None:
            raise ToolError(f"unknown status {entry.get('status')!r}")
        steps.append(PlanStep(entry["step"], status))  # type: ignore[arg-type]
    explanation = args.get("explanation")
    await turn.update_plan(steps, explanation if isinstance(explanation, str) else None)
    return "Plan updated"


def _policy(turn: Turn) -> str:
    # A granular policy object is treated as `on-request`.
    policy = turn.approval_policy
    return policy if isinstance(policy, str) else "on-request"
