"""The SQLite state store: WAL, busy timeout, migrations that are atomic with their version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appserver.app.store import MIGRATIONS, StateStore, StoreError, integrity_check, migrate


def test_open_creates_a_wal_database_at_the_latest_schema(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.sqlite")
    try:
        assert store.version == len(MIGRATIONS)
        db = sqlite3.connect(tmp_path / "state.sqlite")
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"threads", "turns", "items"} <= tables
        db.close()
    finally:
        store.close()
    assert integrity_check(tmp_path / "state.sqlite") == "ok"


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    StateStore.open(tmp_path / "state.sqlite").close()
    store = StateStore.open(tmp_path / "state.sqlite")
    assert store.version == len(MIGRATIONS)
    store.close()


def test_a_failing_migration_leaves_the_previous_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite", isolation_level=None)
    steps = ("CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER); CREATE TABLE a (z);")
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, steps)
    if db.in_transaction:
        db.execute("ROLLBACK")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"a"}
    db.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this appserver knows"):
        StateStore.open(tmp_path / "state.sqlite")


async def test_run_executes_in_a_worker_thread(tmp_path: Path) -> None:
    import threading

    store = StateStore.open(tmp_path / "state.sqlite")
    main = threading.get_ident()

    def count(db: sqlite3.Connection) -> tuple[int, bool]:
        return db.execute("SELECT count(*) FROM threads").fetchone()[
            0
        ], threading.get_ident() != main

    assert await store.run(count) == (0, True)
    store.close()
