"""`thread/shellCommand` (the TUI's `!cmd`): the user's own command, run as Codex runs it: in
the user's login shell (`$SHELL -lc CMD`), in the thread's cwd, without approval and without a
sandbox (Codex: `SandboxType::None`), for at most an hour, its output streamed as a
`commandExecution` item with `source: userShell`. Interrupting kills it; the item then reports
exit code -1 and `command aborted by user`, as Codex's does."""

from __future__ import annotations

import os
import shlex
from typing import Any, Final

import trio

from appserver import process
from appserver.app.thread_state import now_ms
from appserver.app.turn_items import command_item
from appserver.app.turns import MAX_AGGREGATED_OUTPUT, CommandOutput, TurnRun

USER_SHELL_TIMEOUT_MS: Final = 60 * 60 * 1000
ABORTED: Final = "command aborted by user"
UNSANDBOXED: Final = {"type": "dangerFullAccess"}


def user_shell() -> str:
    shell = os.environ.get("SHELL", "")
    if shell and os.path.isabs(shell) and os.access(shell, os.X_OK):
        return shell
    return "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"


def shell_argv(command: str) -> list[str]:
    return [user_shell(), "-lc", command]


async def run_user_shell(run: TurnRun, command: str, timeout_ms: int | None = None) -> None:
    started = now_ms()
    item = command_item(shlex.join(shell_argv(command)), run.cwd, "userShell", typed=command)
    await run.item_started(dict(item), started)
    limit = (timeout_ms if timeout_ms and timeout_ms > 0 else USER_SHELL_TIMEOUT_MS) / 1000
    output = CommandOutput(run, item["id"])
    spec = process.Spec(
        argv=shell_argv(command),
        cwd=run.cwd,
        sandbox=UNSANDBOXED,
        merge_stderr=True,
        timeout=limit,
        output_cap=MAX_AGGREGATED_OUTPUT,
        capture=False,
    )
    try:
        result = await process.run(spec, output)
        item["exitCode"] = result.exit_code
        item["status"] = "completed" if result.exit_code == 0 else "failed"
        item["aggregatedOutput"] = output.text(final=True)
    except OSError as exc:
        item["status"], item["exitCode"], item["aggregatedOutput"] = "failed", -1, f"{exc}\n"
    except BaseException:
        # Interrupted (trio.Cancelled, possibly inside an exception group).
        item["status"], item["exitCode"], item["aggregatedOutput"] = "failed", -1, ABORTED
        raise
    finally:
        item["durationMs"] = now_ms() - started
        if item["status"] == "inProgress":
            item["status"] = "failed"
        with trio.CancelScope(shield=True):
            await run.item_completed(item, started)


class UserShellRun(TurnRun):
    """A turn that runs one user shell command and nothing else (no user message, no agent)."""

    command: str = ""
    timeout_ms: int | None = None

    async def body(self, user_item: dict[str, Any], started: int) -> None:
        await run_user_shell(self, self.command, self.timeout_ms)
