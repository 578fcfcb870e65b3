"""`Turn.apply_patch`: a patch becomes a `fileChange` item, is approved as Codex approves it,
is written within what the thread's sandbox allows, and updates the turn's diff.

When the client is asked (Codex's `assess_patch_safety`):

- `untrusted`: always;
- `on-request` (and `granular`): only when the patch writes outside what the sandbox lets the
  agent write (`readOnly`: nothing; `workspaceWrite`: the cwd, its `writableRoots`, `/tmp` and
  `$TMPDIR` unless excluded, never their `.git`, `.codex`, `.agents`; `dangerFullAccess` and
  `externalSandbox`: everything); inside it the patch applies without asking;
- `never`: never; a patch outside the sandbox is refused (`patch rejected: writing outside of
  the project; rejected by user approval settings`).

As in Codex, the user's explicit approval of one patch is what lets it write outside the sandbox
(Codex runs an approved patch unsandboxed); nothing is ever written outside it without one.
`acceptForSession` approves later patches that write only files an earlier such answer covered.
`cancel` declines and interrupts the turn.

The check is done here, in process, on resolved paths (symlinks followed), since file edits do
not go through the command sandbox.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import trio

from appserver.app import patch as patch_format
from appserver.app.agents.base import FileChangeOutcome
from appserver.app.thread_state import now_ms
from appserver.app.threads import new_id
from appserver.sandbox.policy import PROTECTED_SUBPATHS, PolicyError, parse_policy, writable_roots

if TYPE_CHECKING:
    from appserver.app.turns import TurnRun

log = logging.getLogger(__name__)

REJECTED_BY_POLICY: Final = (
    "patch rejected: writing outside of the project; rejected by user approval settings"
)
REJECTED_BY_USER: Final = "patch rejected by user"
UNRESTRICTED_SANDBOXES: Final = frozenset({"dangerFullAccess", "externalSandbox"})


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def sandbox_allows(sandbox: Any, cwd: str, paths: Iterable[str]) -> bool:
    """Whether the thread's sandbox lets the agent write every one of `paths` (absolute)."""
    try:
        policy = parse_policy(sandbox)
    except PolicyError:
        return False
    if policy.kind in UNRESTRICTED_SANDBOXES:
        return True
    roots = writable_roots(policy, cwd, os.environ.get("TMPDIR"))
    # Protected subpaths of every root stay read-only, whichever root also holds them (as the
    # command sandbox's read-only binds do).
    protected = [os.path.join(r, name) for r in roots for name in PROTECTED_SUBPATHS]
    for path in paths:
        real = os.path.realpath(path)
        if not any(_inside(real, r) for r in roots) or any(_inside(real, p) for p in protected):
            return False
    return True


def approval_needed(approval_policy: Any, within_sandbox: bool) -> str:
    """`auto`, `ask` or `reject` for a patch (Codex's `assess_patch_safety`)."""
    if approval_policy == "untrusted":
        return "ask"
    if within_sandbox:
        return "auto"
    if approval_policy == "never":
        return "reject"
    if isinstance(approval_policy, dict):
        granular = approval_policy.get("granular") or {}
        if granular.get("sandbox_approval") is False:
            return "reject"
    return "ask"


def _display(path: str, cwd: str) -> str:
    return os.path.relpath(path, cwd) if _inside(path, cwd) else path


def _read_or_none(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def git_diff(path: str, cwd: str, old: str | None, new: str | None) -> str:
    """One file's part of the turn diff, git style (`diff --git a/… b/…`)."""
    name = _display(path, cwd)
    head = [f"diff --git a/{name} b/{name}\n"]
    if old is None:
        head.append("new file mode 100644\n")
    elif new is None:
        head.append("deleted file mode 100644\n")
    body = difflib.unified_diff(
        (old or "").splitlines(True),
        (new or "").splitlines(True),
        fromfile="/dev/null" if old is None else f"a/{name}",
        tofile="/dev/null" if new is None else f"b/{name}",
    )
    lines = [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in body
    ]
    return "".join(head + lines)


class FileChanges:
    """The file changes of one turn: approvals, writes, and the turn's diff."""

    def __init__(self, run: TurnRun) -> None:
        self._run = run
        #: Each path's content before the turn first changed it (None: it did not exist).
        self._baseline: dict[str, str | None] = {}

    async def apply(self, patch_text: str, reason: str | None) -> FileChangeOutcome:
        run = self._run
        cwd = run.cwd
        try:
            changes = await trio.to_thread.run_sync(patch_format.plan_patch, patch_text, cwd)
        except patch_format.PatchError as exc:
            return FileChangeOutcome("failed", output=str(exc))
        wire = tuple(sorted((c.wire() for c in changes), key=lambda c: str(c["path"])))
        item: dict[str, Any] = {
            "type": "fileChange",
            "id": new_id(),
            "changes": list(wire),
            "status": "inProgress",
        }
        started = now_ms()
        await run.item_started(dict(item), started)
        written = {p for c in changes for p in c.written_paths}
        state, loaded = run.loaded.state, run.loaded
        verdict = approval_needed(
            state.approval_policy, sandbox_allows(state.sandbox, cwd, written)
        )
        if verdict == "ask" and written <= loaded.patch_paths_approved_for_session:
            verdict = "auto"
        if verdict == "reject":
            return await self._end(item, started, "declined", wire, REJECTED_BY_POLICY)
        if verdict == "ask":
            try:
                decision = await self._ask(item, reason, started)
            except BaseException:
                item["status"] = "declined"
                with trio.CancelScope(shield=True):
                    await run.item_completed(item, started)
                raise
            if decision == "acceptForSession":
                loaded.patch_paths_approved_for_session |= written
            elif decision != "accept":
                outcome = await self._end(item, started, "declined", wire, REJECTED_BY_USER)
                if decision == "cancel":
                    run.cancel_scope.cancel()
                    await trio.lowlevel.checkpoint()
                return outcome
        for path in written:
            if path not in self._baseline:
                self._baseline[path] = await trio.to_thread.run_sync(_read_or_none, path)
        try:
            output = await trio.to_thread.run_sync(patch_format.write_changes, changes)
        except OSError as exc:
            log.info("patch in turn %s failed to write: %s", run.turn_id, exc)
            outcome = await self._end(item, started, "failed", wire, f"error: {exc}")
        else:
            outcome = await self._end(item, started, "completed", wire, output)
        await run.notify("turn/diff/updated", {**run.ids, "diff": await self._turn_diff()})
        return outcome

    async def _end(
        self,
        item: dict[str, Any],
        started: int,
        status: Any,
        changes: tuple[dict[str, Any], ...],
        output: str,
    ) -> FileChangeOutcome:
        item["status"] = status
        await self._run.item_completed(item, started)
        return FileChangeOutcome(status, changes, output)

    async def _ask(self, item: dict[str, Any], reason: str | None, started: int) -> str:
        run = self._run
        params = {
            **run.ids,
            "itemId": item["id"],
            "startedAtMs": started,
            "reason": reason,
            "grantRoot": None,
        }
        reply = await run.server_request(
            "item/fileChange/requestApproval",
            params,
            run.loaded.subscribers,
            waiting="waitingOnApproval",
        )
        if reply.error is not None or not isinstance(reply.result, dict):
            return "decline"
        decision = reply.result.get("decision")
        return decision if isinstance(decision, str) else "decline"

    async def _turn_diff(self) -> str:
        return await trio.to_thread.run_sync(self._diff_now, self._run.cwd)

    def _diff_now(self, cwd: str) -> str:
        parts: list[str] = []
        for path in sorted(self._baseline):
            old, new = self._baseline[path], _read_or_none(path)
            if old != new:
                parts.append(git_diff(path, cwd, old, new))
        return "".join(parts)
