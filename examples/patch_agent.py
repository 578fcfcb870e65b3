"""An agent that edits files through patches (a `fileChange` item, approved as Codex approves
them, then `turn/diff/updated`).

    appserver --agent examples.patch_agent:PatchAgent

A message that is a patch in Codex's format (`*** Begin Patch` …) is applied as it is;
`write PATH: TEXT` writes TEXT (a line) to PATH; `append PATH: TEXT` adds a line at its end.
"""

from __future__ import annotations

from appserver.app.agents import PlanStep, Turn


def patch_for(command: str) -> str | None:
    verb, _, rest = command.partition(" ")
    path, _, line = rest.partition(": ")
    if verb == "write" and path:
        return f"*** Begin Patch\n*** Add File: {path}\n+{line}\n*** End Patch"
    if verb == "append" and path:
        return f"*** Begin Patch\n*** Update File: {path}\n@@\n+{line}\n*** End Patch"
    return None


class PatchAgent:
    name = "patcher"
    display_name = "Patcher"
    description = "Edits files with patches: `write PATH: TEXT`, `append PATH: TEXT`, or a patch."

    async def run_turn(self, turn: Turn) -> None:
        text = turn.text.strip()
        patch = text if text.startswith("*** Begin Patch") else patch_for(text)
        if patch is None:
            await turn.say("Send a patch, `write PATH: TEXT` or `append PATH: TEXT`.")
            return
        await turn.update_plan([("Apply the patch", "inProgress"), ("Report", "pending")])
        outcome = await turn.apply_patch(patch, reason="you asked for this edit")
        await turn.update_plan([("Apply the patch", "completed"), PlanStep("Report", "completed")])
        if outcome.applied:
            await turn.say(outcome.output, chunks=1)
        elif outcome.declined:
            await turn.say("The edit was declined.", chunks=1)
        else:
            turn.fail(f"the patch did not apply: {outcome.output}")
