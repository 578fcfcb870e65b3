"""`review/start` (the TUI's `/review`): a turn that enters review mode, gathers the diff under
review with git, asks the agent's `review` hook (or the default) for the review text and exits
review mode with it.

Items, as Codex sends them: `enteredReviewMode` (the short description the TUI shows, e.g.
`current changes`), the review prompt as the user's message, then `exitedReviewMode` whose
`review` is the text, and the same text as an agent message (what the TUI displays). An
interrupted review exits review mode with `Reviewer failed to output a response.` and says so
in an agent message.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import trio

from appserver import process
from appserver.app.agents.hooks import review_hook
from appserver.app.thread_state import now_ms
from appserver.app.threads import new_id
from appserver.app.turns import TurnRun

log = logging.getLogger(__name__)

GIT_TIMEOUT: Final = 30.0
DIFF_CAP: Final = 1024 * 1024
#: git reads the repository and writes nothing.
GIT_SANDBOX: Final = {"type": "readOnly", "networkAccess": False}
FAILED: Final = "Reviewer failed to output a response."
INTERRUPTED: Final = "Review was interrupted. Please re-run /review and wait for it to complete."


def review_prompt(target: dict[str, Any], merge_base: str | None = None) -> str:
    """Codex's review prompt for a target (`review_prompts.rs`)."""
    kind = target.get("type")
    if kind == "baseBranch":
        branch = target.get("branch", "")
        if merge_base:
            return (
                f"Review the code changes against the base branch '{branch}'. The merge base "
                f"commit for this comparison is {merge_base}. Run `git diff {merge_base}` to "
                f"inspect the changes relative to {branch}. Provide prioritized, actionable "
                "findings."
            )
        return (
            f"Review the code changes against the base branch '{branch}'. Start by finding the "
            f"merge diff between the current branch and {branch}'s upstream e.g. (`git "
            f'merge-base HEAD "$(git rev-parse --abbrev-ref "{branch}@{{upstream}}")"`), then '
            f"run `git diff` against that SHA to see what changes we would merge into the "
            f"{branch} branch. Provide prioritized, actionable findings."
        )
    if kind == "commit":
        sha, title = target.get("sha", ""), target.get("title")
        if title:
            return (
                f'Review the code changes introduced by commit {sha} ("{title}"). Provide '
                "prioritized, actionable findings."
            )
        return (
            f"Review the code changes introduced by commit {sha}. Provide prioritized, "
            "actionable findings."
        )
    if kind == "custom":
        return str(target.get("instructions", "")).strip()
    return (
        "Review the current code changes (staged, unstaged, and untracked files) and provide "
        "prioritized findings."
    )


def review_hint(target: dict[str, Any]) -> str:
    """The short description of a target the TUI shows (Codex's `user_facing_hint`)."""
    kind = target.get("type")
    if kind == "baseBranch":
        return f"changes against '{target.get('branch', '')}'"
    if kind == "commit":
        short = str(target.get("sha", ""))[:7]
        title = target.get("title")
        return f"commit {short}: {title}" if title else f"commit {short}"
    if kind == "custom":
        return str(target.get("instructions", "")).strip()
    return "current changes"


async def git(cwd: str, *args: str) -> tuple[int, str]:
    """Run `git ARGS` in `cwd` read-only; (exit code, stdout and stderr)."""
    spec = process.Spec(
        argv=["git", "--no-pager", *args],
        cwd=cwd,
        sandbox=GIT_SANDBOX,
        merge_stderr=True,
        timeout=GIT_TIMEOUT,
        output_cap=DIFF_CAP,
    )
    try:
        result = await process.run(spec)
    except (OSError, process.SandboxUnavailable, process.PolicyError) as exc:
        return 127, f"{exc}\n"
    return result.exit_code, result.stdout.decode("utf-8", "replace")


async def gather_diff(cwd: str, target: dict[str, Any]) -> tuple[str, str | None]:
    """(the diff under review, the merge base for a `baseBranch` target)."""
    kind = target.get("type")
    if kind == "custom":
        return "", None
    if kind == "commit":
        _, out = await git(cwd, "show", "--format=medium", str(target.get("sha", "")))
        return out, None
    if kind == "baseBranch":
        code, base = await git(cwd, "merge-base", "HEAD", str(target.get("branch", "")))
        if code != 0:
            return base, None
        merge_base = base.strip()
        _, out = await git(cwd, "diff", merge_base)
        return out, merge_base
    code, out = await git(cwd, "diff", "HEAD")
    if code != 0:
        # No commit yet (or not a repository): the working tree against the index.
        _, out = await git(cwd, "diff")
    _, untracked = await git(cwd, "ls-files", "--others", "--exclude-standard")
    for path in untracked.splitlines():
        if path:
            _, added = await git(cwd, "diff", "--no-index", "--", "/dev/null", path)
            out += added
    return out, None


class ReviewRun(TurnRun):
    """`target` is the `ReviewTarget` JSON; set before the turn runs."""

    target: dict[str, Any]

    async def body(self, user_item: dict[str, Any], started: int) -> None:
        entered = {"type": "enteredReviewMode", "id": new_id(), "review": review_hint(self.target)}
        at = now_ms()
        await self.item_started(dict(entered), at)
        await self.item_completed(entered, at)
        exited = {"type": "exitedReviewMode", "id": new_id(), "review": FAILED}
        try:
            diff, merge_base = await gather_diff(self.cwd, self.target)
            prompt: dict[str, Any] = {
                "type": "text",
                "text": review_prompt(self.target, merge_base),
                "text_elements": [],
            }
            user_item = {**user_item, "content": [prompt]}
            await self.item_started(user_item, at)
            await self.item_completed(user_item, at)
            self._input = [prompt, {"type": "text", "text": diff, "text_elements": []}]
            exited["review"] = str(await review_hook(self.agent)(self, self.target))
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                at = now_ms()
                await self.item_started(dict(exited), at)
                await self.item_completed(exited, at)
                if isinstance(exc, trio.Cancelled):
                    await self.say(INTERRUPTED, chunks=1)
            raise
        at = now_ms()
        await self.item_started(dict(exited), at)
        await self.item_completed(exited, at)
        # As Codex records the review into the parent thread: the TUI shows this message.
        await self.say(exited["review"], chunks=1)
