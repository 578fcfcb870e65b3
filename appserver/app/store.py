"""The SQLite state store (`HOME/state.sqlite`): WAL, a busy timeout, migrations in code.

Opened under the startup lock, so no two launches ever race into creating or migrating it. Each
migration runs in one `BEGIN IMMEDIATE` transaction together with its `user_version` bump, so a
crash at any point leaves either the old schema or the new one. Blocking SQLite work runs in a
worker thread, one call at a time (`run`), never on the trio loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

import trio

BUSY_TIMEOUT_SECONDS: Final = 5.0

P = ParamSpec("P")
R = TypeVar("R")

#: Schema migrations; the list index + 1 is the schema version they bring the file to.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE threads (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL
    );
    CREATE INDEX threads_by_update ON threads (archived, updated_at);
    CREATE TABLE turns (
        id TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (thread_id, seq)
    );
    CREATE TABLE items (
        turn_id TEXT NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (turn_id, seq)
    );
    """,
)


class StoreError(Exception):
    pass


def schema_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(db: sqlite3.Connection, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Bring the schema up to date; returns the version. Refuses a newer schema than ours."""
    current = schema_version(db)
    if current > len(migrations):
        raise StoreError(
            f"schema version {current} is newer than this appserver knows ({len(migrations)})"
        )
    for version in range(current + 1, len(migrations) + 1):
        script = migrations[version - 1]
        db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    return schema_version(db)


class StateStore:
    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    def open(cls, path: Path) -> StateStore:
        """Open (creating if needed) and migrate. Blocking: call it from a worker thread."""
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"could not switch {path} to WAL (journal_mode is {mode})")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            migrate(db)
        except BaseException:
            db.close()
            raise
        return cls(db, path)

    @property
    def version(self) -> int:
        return schema_version(self._db)

    async def run(self, fn: Callable[..., R], *args: object) -> R:
        """Run `fn(db, *args)` in a worker thread, one call at a time."""
        return await trio.to_thread.run_sync(fn, self._db, *args, limiter=self._limiter)

    def close(self) -> None:
        self._db.close()


def integrity_check(path: Path) -> str:
    """`PRAGMA integrity_check` of a state file: "ok" when intact."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()
