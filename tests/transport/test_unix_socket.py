"""Control socket path preparation and binding (codex-source-spec §2.1, §10.2, §10.13 uds)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from appserver.home import HomeError
from appserver.transport.unix import (
    SocketPathError,
    bind_listener,
    check_path_length,
    is_stale_socket_path,
    prepare_socket_path,
    probe,
    remove_socket_file,
    socket_identity,
)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # pytest's tmp_path can exceed sun_path; sockets need a short directory.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="as-", dir="/tmp") as name:
        yield Path(name)


def stale_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.fspath(path))
    sock.close()


def test_regular_file_path_is_not_stale_socket_path(short_dir: Path) -> None:
    path = short_dir / "file"
    path.write_text("x")
    assert not is_stale_socket_path(path)


def test_bound_listener_path_is_stale_socket_path(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    stale_socket(path)
    assert is_stale_socket_path(path)


def test_symlink_to_a_socket_is_not_a_stale_socket_path(short_dir: Path) -> None:
    stale_socket(short_dir / "real.sock")
    (short_dir / "link.sock").symlink_to(short_dir / "real.sock")
    assert not is_stale_socket_path(short_dir / "link.sock")


def test_prepare_accepts_a_free_path(short_dir: Path) -> None:
    prepare_socket_path(short_dir / "control" / "s.sock")


def test_prepare_removes_a_stale_socket(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    stale_socket(path)
    prepare_socket_path(path)
    assert not os.path.lexists(path)


def test_prepare_refuses_a_live_listener(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(os.fspath(path))
        live.listen()
        assert probe(path)
        with pytest.raises(SocketPathError) as info:
            prepare_socket_path(path)
    assert str(info.value) == f"app-server control socket is already in use at {path}"
    assert stat.S_ISSOCK(path.lstat().st_mode)


@pytest.mark.parametrize("kind", ["file", "directory", "dangling symlink", "symlink to socket"])
def test_control_socket_path_rejects_non_socket_path(short_dir: Path, kind: str) -> None:
    path = short_dir / "s.sock"
    if kind == "file":
        path.write_text("keep me")
    elif kind == "directory":
        path.mkdir()
    elif kind == "dangling symlink":
        path.symlink_to(short_dir / "nowhere")
    else:
        stale_socket(short_dir / "real.sock")
        path.symlink_to(short_dir / "real.sock")
    with pytest.raises(SocketPathError) as info:
        prepare_socket_path(path)
    assert str(info.value) == (f"app-server control socket path exists and is not a socket: {path}")
    assert os.path.lexists(path)
    if kind == "file":
        assert path.read_text() == "keep me"


def test_a_missing_socket_directory_is_created_owner_only(short_dir: Path) -> None:
    parent = short_dir / "new" / "control"
    prepare_socket_path(parent / "s.sock")
    assert stat.S_IMODE(parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o1777])
async def test_an_existing_socket_directory_keeps_its_mode(short_dir: Path, mode: int) -> None:
    """Issue 13 item 2: `unix:///tmp/x.sock` must not chmod /tmp (Codex leaves it alone too)."""
    parent = short_dir / "shared"
    parent.mkdir()
    parent.chmod(mode)
    path = parent / "s.sock"
    prepare_socket_path(path)
    listener = bind_listener(path)
    try:
        assert stat.S_IMODE(parent.stat().st_mode) == mode
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    finally:
        await listener.aclose()


def test_a_socket_directory_others_could_replace_the_socket_in_is_refused(
    short_dir: Path,
) -> None:
    parent = short_dir / "open"
    parent.mkdir()
    parent.chmod(0o777)
    with pytest.raises(HomeError, match="writable by other users without the sticky bit"):
        prepare_socket_path(parent / "s.sock")
    assert stat.S_IMODE(parent.stat().st_mode) == 0o777
    assert list(parent.iterdir()) == []


def test_overlong_path_fails_clearly(short_dir: Path) -> None:
    path = short_dir / ("x" * 120) / "s.sock"
    with pytest.raises(SocketPathError, match="over the 107-byte limit"):
        check_path_length(path)
    check_path_length(short_dir / "ok.sock")


async def test_control_socket_file_is_private_after_bind(short_dir: Path) -> None:
    path = short_dir / "control" / "s.sock"
    listener = bind_listener(path)
    try:
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        await listener.aclose()


async def test_stream_round_trips_data_between_listener_and_client(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    listener = bind_listener(path)
    async with listener, trio.open_nursery() as nursery:

        async def echo_once() -> None:
            stream = await listener.accept()
            async with stream:
                await stream.send_all(b"response:" + await stream.receive_some())

        nursery.start_soon(echo_once)
        client = await trio.open_unix_socket(os.fspath(path))
        async with client:
            await client.send_all(b"request")
            assert await client.receive_some() == b"response:request"


async def test_remove_socket_file_leaves_a_newer_socket_alone(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    listener = bind_listener(path)
    ours = socket_identity(path)
    await listener.aclose()
    await trio.to_thread.run_sync(check_only_our_socket_is_removed, path, ours)


def check_only_our_socket_is_removed(path: Path, ours: tuple[int, int, int]) -> None:
    path.unlink()
    stale_socket(path)  # someone else's socket now, likely with our old inode number
    remove_socket_file(path, ours)
    assert os.path.lexists(path)
    remove_socket_file(path, socket_identity(path))
    assert not os.path.lexists(path)
