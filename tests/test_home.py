"""Home layout, the private control directory and the startup lock (spec §2.2, §2.3, §10.2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import trio

from appserver.home import (
    HomeError,
    control_socket_path,
    prepare_private_directory,
    resolve_home,
    startup_lock,
    startup_lock_path,
    state_db_path,
)


def test_home_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPSERVER_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_home(None) == tmp_path / "env"
    monkeypatch.delenv("APPSERVER_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert resolve_home(None) == tmp_path / "user" / ".appserver"


def test_home_layout(tmp_path: Path) -> None:
    control = tmp_path / "app-server-control"
    assert control_socket_path(tmp_path) == control / "app-server-control.sock"
    assert startup_lock_path(tmp_path) == control / "app-server-startup.lock"
    assert state_db_path(tmp_path) == tmp_path / "state.sqlite"


def test_prepare_private_socket_directory_creates_directory(tmp_path: Path) -> None:
    target = tmp_path / "home" / "app-server-control"
    prepare_private_directory(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o1777, 0o1770])
def test_prepare_private_directory_never_changes_an_existing_directory(
    tmp_path: Path, mode: int
) -> None:
    """Issue 13 item 2: the directory may be shared (`/tmp`, a 1777 run directory); the socket
    and lock inside are private by their own modes, and a sticky bit keeps others from
    replacing them."""
    target = tmp_path / "control"
    target.mkdir()
    target.chmod(mode)
    prepare_private_directory(target)
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o703])
def test_prepare_private_directory_refuses_one_others_can_replace_files_in(
    tmp_path: Path, mode: int
) -> None:
    target = tmp_path / "control"
    target.mkdir()
    target.chmod(mode)
    with pytest.raises(HomeError, match="writable by other users without the sticky bit"):
        prepare_private_directory(target)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_prepare_private_directory_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "control"
    target.write_text("not a dir")
    with pytest.raises(HomeError, match="exists and is not a directory"):
        prepare_private_directory(target)
    assert target.read_text() == "not a dir"


def test_prepare_private_directory_refuses_a_symlink_to_a_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "control").symlink_to(real)
    with pytest.raises(HomeError, match="exists and is not a directory"):
        prepare_private_directory(tmp_path / "control")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a directory to another user")
def test_prepare_private_directory_refuses_a_directory_owned_by_someone_else(
    tmp_path: Path,
) -> None:
    target = tmp_path / "control"
    target.mkdir(mode=0o700)
    os.chown(target, 65534, 65534)
    with pytest.raises(HomeError, match="owned by uid 65534"):
        prepare_private_directory(target)


async def test_app_server_startup_lock_serializes_waiters(tmp_path: Path) -> None:
    order: list[str] = []
    first_holds = trio.Event()
    release_first = trio.Event()

    async def first() -> None:
        async with startup_lock(tmp_path):
            order.append("first acquired")
            first_holds.set()
            await release_first.wait()
            order.append("first released")

    async def second() -> None:
        await first_holds.wait()
        async with startup_lock(tmp_path):
            order.append("second acquired")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(second)
        await first_holds.wait()
        # The second waiter blocks in flock(2) in a worker thread. Nothing can be awaited to show
        # that it keeps blocking, so this is the one place real time passes (upstream: >= 100 ms).
        await trio.sleep(0.15)
        assert order == ["first acquired"]
        release_first.set()
    assert order == ["first acquired", "first released", "second acquired"]
    assert stat.S_IMODE(startup_lock_path(tmp_path).parent.stat().st_mode) == 0o700


async def test_startup_lock_is_free_after_a_cancelled_wait(tmp_path: Path) -> None:
    async with startup_lock(tmp_path):
        with trio.move_on_after(0.05) as waited:
            async with startup_lock(tmp_path):
                pytest.fail("acquired a lock that is held")
        assert waited.cancelled_caught
    # The abandoned waiter thread got the lock after we released it, and must not keep it.
    with trio.fail_after(5):
        async with startup_lock(tmp_path):
            pass
