"""Threads and turns as the application holds them, and how they persist in `state.sqlite`.

Persistence happens before the notification that reports it: a turn reported completed, an item
reported completed, a thread reported started are all on disk when the client hears of them.
Ephemeral threads are never written.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import attrs
import orjson

from appserver.protocol.initialize import CODEX_COMPAT_VERSION
from appserver.protocol.v2 import JsonObject, Thread, Turn
from appserver.wire.converter import unstructure

MODEL_PROVIDER = "appserver"
INTERRUPTED_BY_RESTART = {"message": "the server stopped while this turn was running"}


def now_s() -> int:
    return int(time.time())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define(eq=False)
class ItemRecord:
    item: JsonObject
    started_at_ms: int | None = None
    completed_at_ms: int | None = None


@attrs.define(eq=False)
class TurnState:
    id: str
    seq: int
    status: str = "inProgress"
    items: list[ItemRecord] = attrs.Factory(list)
    started_at: int = attrs.Factory(now_s)
    completed_at: int | None = None
    duration_ms: int | None = None
    error: JsonObject | None = None
    #: Set on a compaction turn: the summary that stands for every turn before it.
    compaction_summary: str | None = None
    #: `wire_json()` of the finished turn, with what it was made from.
    _wire_json: tuple[tuple[Any, ...], bytes] | None = attrs.field(
        default=None, init=False, repr=False
    )

    def wire_json(self) -> bytes:
        """`to_wire()` as JSON, made once the turn has finished (`Turn.history` sends every
        earlier turn to the agent at each turn). A finished turn does not change; the key
        would notice if it did."""
        key = (self.status, self.completed_at, self.duration_ms, len(self.items), self.error)
        cached = self._wire_json
        if cached is not None and cached[0] == key:
            return cached[1]
        data = orjson.dumps(unstructure(self.to_wire()))
        if self.status != "inProgress":
            self._wire_json = (key, data)
        return data

    def to_wire(self, items_view: str = "full") -> Turn:
        items = [] if items_view == "notLoaded" else [r.item for r in self.items]
        return Turn(
            id=self.id,
            items=items,
            status=self.status,
            error=self.error,
            started_at=self.started_at,
            completed_at=self.completed_at,
            duration_ms=self.duration_ms,
            items_view=None if items_view == "full" else items_view,
        )


@attrs.define(eq=False)
class ThreadState:
    id: str
    cwd: str
    model: str
    created_at: int = attrs.Factory(now_s)
    updated_at: int = attrs.Factory(now_s)
    approval_policy: Any = "on-request"
    approvals_reviewer: str = "user"
    sandbox: JsonObject = attrs.Factory(lambda: {"type": "readOnly", "networkAccess": False})
    name: str | None = None
    preview: str = ""
    ephemeral: bool = False
    archived: bool = False
    source: Any = "appServer"
    originator: str | None = None
    forked_from_id: str | None = None
    thread_source: str | None = None
    reasoning_effort: str | None = None
    #: `thread/goal/set`: the `ThreadGoal` JSON object, or None.
    goal: JsonObject | None = None
    git_info: JsonObject | None = None
    #: `thread/settings/update`: Codex's `CollaborationMode` object, service tier, summary mode.
    collaboration_mode: JsonObject | None = None
    service_tier: str | None = None
    reasoning_summary: str | None = None
    personality: str | None = None
    #: `thread/inject_items` (`/side`): raw Responses API items added to the model-visible
    #: history outside any turn, each as `{"afterTurnId": <the thread's last turn then, or
    #: None>, "item": {...}}` (see `injected`).
    injected_items: list[Any] = attrs.Factory(list)
    #: `thread/start`'s `dynamicTools` (Codex `DynamicToolSpec` objects) the agent may call.
    dynamic_tools: list[JsonObject] = attrs.Factory(list)
    turns: list[TurnState] = attrs.Factory(list)

    def listed(self, archived: bool) -> bool:
        """Shown by `thread/list` and `thread/search` (of the archived threads, or not): like
        Codex's (`first_user_message <> ''`), a thread once it has had a turn; never an
        ephemeral one."""
        return not self.ephemeral and self.archived == archived and bool(self.preview or self.turns)

    def inject(self, items: Sequence[JsonObject]) -> None:
        after = self.turns[-1].id if self.turns else None
        self.injected_items.extend({"afterTurnId": after, "item": item} for item in items)

    def injected(self) -> list[tuple[str | None, JsonObject]]:
        """The injected items in order, each with the id of the turn it came after (None:
        before any). An entry stored bare by an older version counts as before any turn."""
        out: list[tuple[str | None, JsonObject]] = []
        for entry in self.injected_items:
            if isinstance(entry, dict) and "item" in entry and "type" not in entry:
                out.append((entry.get("afterTurnId"), entry["item"]))
            elif isinstance(entry, dict):
                out.append((None, entry))
        return out

    _PERSISTED = [
        "cwd",
        "model",
        "created_at",
        "updated_at",
        "approval_policy",
        "approvals_reviewer",
        "sandbox",
        "name",
        "preview",
        "source",
        "originator",
        "forked_from_id",
        "thread_source",
        "reasoning_effort",
        "goal",
        "git_info",
        "collaboration_mode",
        "service_tier",
        "reasoning_summary",
        "personality",
        "injected_items",
        "dynamic_tools",
    ]

    def touch(self) -> None:
        self.updated_at = now_s()

    def to_wire(self, status: JsonObject, *, include_turns: bool = False) -> Thread:
        return Thread(
            id=self.id,
            session_id=self.id,
            preview=self.preview,
            ephemeral=self.ephemeral,
            model_provider=MODEL_PROVIDER,
            model=self.model,
            created_at=self.created_at,
            updated_at=self.updated_at,
            recency_at=self.updated_at,
            status=status,
            cwd=self.cwd,
            cli_version=CODEX_COMPAT_VERSION,
            source=self.source,
            originator=self.originator,
            forked_from_id=self.forked_from_id,
            thread_source=self.thread_source,
            name=self.name,
            reasoning_effort=self.reasoning_effort,
            git_info=self.git_info,
            turns=[t.to_wire() for t in self.turns] if include_turns else [],
        )


# -- persistence (blocking; run through StateStore.run) ---------------------------------------


def _thread_data(thread: ThreadState) -> bytes:
    return orjson.dumps({key: getattr(thread, key) for key in ThreadState._PERSISTED})


def save_thread(db: sqlite3.Connection, thread: ThreadState) -> None:
    if thread.ephemeral:
        return
    db.execute(
        "INSERT INTO threads (id, created_at, updated_at, archived, data) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, "
        "archived = excluded.archived, data = excluded.data",
        (
            thread.id,
            thread.created_at,
            thread.updated_at,
            int(thread.archived),
            _thread_data(thread),
        ),
    )


def save_turn(
    db: sqlite3.Connection,
    thread: ThreadState,
    turn: TurnState,
    ahead: Sequence[ItemRecord] = (),
) -> None:
    """The turn, all its items and the thread row, in one transaction; `ahead` are items saved
    after the turn's own before they are reported (see `TurnRun.save_accepted`)."""
    if thread.ephemeral:
        return
    data = orjson.dumps(
        {
            "status": turn.status,
            "startedAt": turn.started_at,
            "completedAt": turn.completed_at,
            "durationMs": turn.duration_ms,
            "error": turn.error,
            "compactionSummary": turn.compaction_summary,
        }
    )
    with db:
        db.execute("BEGIN IMMEDIATE")
        save_thread(db, thread)
        db.execute(
            "INSERT INTO turns (id, thread_id, seq, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            (turn.id, thread.id, turn.seq, data),
        )
        db.execute("DELETE FROM items WHERE turn_id = ?", (turn.id,))
        db.executemany(
            "INSERT INTO items (turn_id, seq, id, data) VALUES (?, ?, ?, ?)",
            [
                (
                    turn.id,
                    seq,
                    str(record.item.get("id", "")),
                    orjson.dumps(
                        {
                            "item": record.item,
                            "startedAtMs": record.started_at_ms,
                            "completedAtMs": record.completed_at_ms,
                        }
                    ),
                )
                for seq, record in enumerate([*turn.items, *ahead])
            ],
        )


def drop_turns(db: sqlite3.Connection, thread: ThreadState, turn_ids: list[str]) -> None:
    """Delete these turns with their items and save the thread row, in one transaction."""
    if thread.ephemeral:
        return
    with db:
        db.execute("BEGIN IMMEDIATE")
        save_thread(db, thread)
        db.executemany("DELETE FROM items WHERE turn_id = ?", [(t,) for t in turn_ids])
        db.executemany("DELETE FROM turns WHERE id = ?", [(t,) for t in turn_ids])


def item_text(item: JsonObject) -> str:
    """The searchable text of an item: messages, commands, reviews."""
    kind = item.get("type")
    if kind == "userMessage":
        return " ".join(str(c.get("text", "")) for c in item.get("content", []) if "text" in c)
    if kind == "agentMessage":
        return str(item.get("text", ""))
    if kind == "commandExecution":
        return str(item.get("command", ""))
    if kind in ("enteredReviewMode", "exitedReviewMode"):
        return str(item.get("review", ""))
    return ""


def search_items(db: sqlite3.Connection, term: str) -> dict[str, str]:
    """Thread id -> the text of its first item containing `term` (case-insensitive)."""
    found: dict[str, str] = {}
    needle = term.lower()
    pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    for thread_id, data in db.execute(
        "SELECT turns.thread_id, items.data FROM items JOIN turns ON turns.id = items.turn_id "
        "WHERE CAST(items.data AS TEXT) LIKE ? ESCAPE '\\' ORDER BY turns.seq, items.seq",
        (pattern,),
    ):
        if thread_id in found:
            continue
        text = item_text(orjson.loads(data)["item"])
        if needle in text.lower():
            found[thread_id] = text
    return found


def delete_thread(db: sqlite3.Connection, thread_id: str) -> bool:
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "DELETE FROM items WHERE turn_id IN (SELECT id FROM turns WHERE thread_id = ?)",
            (thread_id,),
        )
        db.execute("DELETE FROM turns WHERE thread_id = ?", (thread_id,))
        return db.execute("DELETE FROM threads WHERE id = ?", (thread_id,)).rowcount > 0


def _thread_from_row(row: tuple[Any, ...]) -> ThreadState:
    thread_id, archived, data = row
    fields = orjson.loads(data)
    return ThreadState(id=thread_id, archived=bool(archived), **fields)


def load_thread(db: sqlite3.Connection, thread_id: str) -> ThreadState | None:
    """The thread with its turns and items. Turns a dead process left running are interrupted."""
    row = db.execute("SELECT id, archived, data FROM threads WHERE id = ?", (thread_id,)).fetchone()
    if row is None:
        return None
    thread = _thread_from_row(row)
    turns: dict[str, TurnState] = {}
    for turn_id, seq, data in db.execute(
        "SELECT id, seq, data FROM turns WHERE thread_id = ? ORDER BY seq", (thread_id,)
    ):
        fields = orjson.loads(data)
        turn = TurnState(
            id=turn_id,
            seq=seq,
            status=fields["status"],
            started_at=fields["startedAt"],
            completed_at=fields["completedAt"],
            duration_ms=fields["durationMs"],
            error=fields["error"],
            compaction_summary=fields.get("compactionSummary"),
        )
        turns[turn_id] = turn
        thread.turns.append(turn)
    for turn_id, data in db.execute(
        "SELECT items.turn_id, items.data FROM items JOIN turns ON turns.id = items.turn_id "
        "WHERE turns.thread_id = ? ORDER BY turns.seq, items.seq",
        (thread_id,),
    ):
        fields = orjson.loads(data)
        turns[turn_id].items.append(
            ItemRecord(fields["item"], fields["startedAtMs"], fields["completedAtMs"])
        )
    for turn in thread.turns:
        if turn.status == "inProgress":
            turn.status = "interrupted"
            turn.error = dict(INTERRUPTED_BY_RESTART)
            turn.completed_at = turn.completed_at or thread.updated_at
    return thread


def list_threads(db: sqlite3.Connection) -> list[ThreadState]:
    """Every persisted thread, without turns (filtering and paging happen in the caller)."""
    rows = db.execute("SELECT id, archived, data FROM threads").fetchall()
    return [_thread_from_row(row) for row in rows]
