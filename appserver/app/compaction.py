"""`thread/compact/start`: a turn holding one `contextCompaction` item, whose summary comes from
the agent's `compact` hook (or the default). Later turns see only the turns after it in
`Turn.history` and the summary in `Turn.compaction_summary`."""

from __future__ import annotations

from typing import Any

from appserver.app.agents.hooks import compact_hook
from appserver.app.thread_state import now_ms
from appserver.app.threads import new_id
from appserver.app.turns import TurnRun


class CompactionRun(TurnRun):
    async def body(self, user_item: dict[str, Any], started: int) -> None:
        item = {"type": "contextCompaction", "id": new_id()}
        item_started = now_ms()
        await self.item_started(dict(item), item_started)
        summary = await compact_hook(self.agent)(self)
        self.turn.compaction_summary = str(summary)
        await self.item_completed(item, item_started)
