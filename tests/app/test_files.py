"""fs/* through the application: Codex's answers, errors and watch notifications.

Expected texts and shapes are what the real Codex 0.169 server answered to the same calls.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.app.app_harness import AppHarness, Client, open_app


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "t"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "f.txt").write_bytes(b"hi\n")
    (root / "d" / "sub" / "x").write_bytes(b"x")
    (root / "link").symlink_to("f.txt")
    (root / "dlink").symlink_to("d")
    (root / "dangling").symlink_to("/nonexistent-target")
    os.mkfifo(root / "fifo")
    return root


def temporary_files(root: Path) -> list[str]:
    return [name for name in os.listdir(root) if name.endswith(".tmp")]


async def client(app: AppHarness) -> Client:
    return await app.client()


async def test_read_file_follows_links_and_refuses_what_is_not_a_file(
    tmp_path: Path, tree: Path
) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await client(app)
        assert await c.call("fs/readFile", {"path": f"{tree}/f.txt"}) == {"dataBase64": "aGkK"}
        assert (await c.call("fs/readFile", {"path": f"{tree}/link"}))["dataBase64"] == "aGkK"
        assert (await c.call("fs/readFile", {"path": f"{tree}/d/../f.txt"}))["dataBase64"]
        for name in ("d", "fifo"):
            assert await c.error("fs/readFile", {"path": f"{tree}/{name}"}) == {
                "code": -32600,
                "message": f"path `{tree}/{name}` is not a file",
            }
        for name in ("nope", "dangling"):
            assert await c.error("fs/readFile", {"path": f"{tree}/{name}"}) == {
                "code": -32603,
                "message": "No such file or directory (os error 2)",
            }
        assert await c.error("fs/readFile", {"path": "t/f.txt"}) == {
            "code": -32600,
            "message": "Invalid request: AbsolutePathBuf deserialized without a base path",
        }
        assert c.assert_schema_valid()


async def test_write_file_is_atomic_through_links_and_checks_base64(
    tmp_path: Path, tree: Path
) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await client(app)
        target = tree / "w.txt"
        assert await c.call("fs/writeFile", {"path": str(target), "dataBase64": b64(b"one")}) == {}
        assert target.read_bytes() == b"one"
        target.chmod(0o640)
        await c.call("fs/writeFile", {"path": str(target), "dataBase64": b64(b"two")})
        assert target.read_bytes() == b"two"
        assert target.stat().st_mode & 0o777 == 0o640  # the mode of the file it replaced
        await c.call("fs/writeFile", {"path": f"{tree}/link", "dataBase64": b64(b"via link")})
        assert (tree / "link").is_symlink()
        assert (tree / "f.txt").read_bytes() == b"via link"
        assert await c.error("fs/writeFile", {"path": str(target), "dataBase64": "aGVsbG8"}) == {
            "code": -32600,
            "message": "fs/writeFile requires valid base64 dataBase64: Invalid padding",
        }
        assert target.read_bytes() == b"two"
        assert await c.error("fs/writeFile", {"path": f"{tree}/no/w", "dataBase64": ""}) == {
            "code": -32603,
            "message": "No such file or directory (os error 2)",
        }
        assert await c.error("fs/writeFile", {"path": f"{tree}/d", "dataBase64": ""}) == {
            "code": -32603,
            "message": "Is a directory (os error 21)",
        }
        assert temporary_files(tree) == []
        assert c.assert_schema_valid()


async def test_metadata_and_directory_listing(tmp_path: Path, tree: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await client(app)
        meta = await c.call("fs/getMetadata", {"path": f"{tree}/dlink"})
        assert meta["isDirectory"]
        assert meta["isSymlink"]
        assert not meta["isFile"]
        assert meta["modifiedAtMs"] == (tree / "d").stat().st_mtime_ns // 1_000_000
        meta = await c.call("fs/getMetadata", {"path": f"{tree}/fifo"})
        assert (meta["isDirectory"], meta["isFile"], meta["isSymlink"]) == (
            False,
            False,
            False,
        )
        assert (await c.error("fs/getMetadata", {"path": f"{tree}/dangling"}))["code"] == -32603
        entries = (await c.call("fs/readDirectory", {"path": str(tree)}))["entries"]
        by_name = {e["fileName"]: (e["isDirectory"], e["isFile"]) for e in entries}
        assert by_name == {  # the dangling link is left out, as Codex does
            "f.txt": (False, True),
            "link": (False, True),
            "d": (True, False),
            "dlink": (True, False),
            "fifo": (False, False),
        }
        assert await c.error("fs/readDirectory", {"path": f"{tree}/f.txt"}) == {
            "code": -32603,
            "message": "Not a directory (os error 20)",
        }
        assert c.assert_schema_valid()


async def test_create_directory_and_remove(tmp_path: Path, tree: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await client(app)
        deep = f"{tree}/a/b/c"
        assert await c.call("fs/createDirectory", {"path": deep}) == {}
        assert await c.call("fs/createDirectory", {"path": deep, "recursive": None}) == {}
        assert await trio.to_thread.run_sync(os.path.isdir, deep)
        errors = [
            ("fs/createDirectory", {"path": f"{tree}/x/y", "recursive": False}, 2),
            ("fs/createDirectory", {"path": f"{tree}/a", "recursive": False}, 17),
            ("fs/createDirectory", {"path": f"{tree}/f.txt"}, 17),
            ("fs/remove", {"path": f"{tree}/nope", "force": False}, 2),
            ("fs/remove", {"path": f"{tree}/a", "recursive": False}, 39),
        ]
        for method, params, errno in errors:
            error = await c.error(method, params)
            assert error == {
                "code": -32603,
                "message": f"{os.strerror(errno)} (os error {errno})",
            }
        assert await c.call("fs/remove", {"path": f"{tree}/nope"}) == {}
        await c.call("fs/remove", {"path": f"{tree}/dlink"})
        assert not (tree / "dlink").exists()
        assert (tree / "d" / "sub" / "x").exists()
        await c.call("fs/remove", {"path": f"{tree}/a"})
        assert not (tree / "a").exists()
        assert c.assert_schema_valid()


async def test_copy_files_trees_and_links(tmp_path: Path, tree: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await client(app)

        async def copy(source: str, destination: str, **extra: Any) -> Any:
            params = {
                "sourcePath": f"{tree}/{source}",
                "destinationPath": f"{tree}/{destination}",
            }
            return await c.request("fs/copy", {**params, **extra})

        assert (await copy("d", "d2"))["error"] == {
            "code": -32600,
            "message": "fs/copy requires recursive: true when sourcePath is a directory",
        }
        assert (await copy("d", "d2", recursive=True))["result"] == {}
        assert (tree / "d2" / "sub" / "x").read_bytes() == b"x"
        assert (await copy("d", "d/inner", recursive=True))["error"]["message"] == (
            "fs/copy cannot copy a directory to itself or one of its descendants"
        )
        assert (await copy("f.txt", "g.txt"))["result"] == {}
        assert (tree / "g.txt").read_bytes() == b"hi\n"
        assert (await copy("f.txt", "f.txt"))["result"] == {}
        assert (tree / "f.txt").read_bytes() == b"hi\n"  # Codex would have truncated it
        assert (await copy("link", "link2"))["result"] == {}
        assert os.readlink(tree / "link2") == "f.txt"
        assert (await copy("link", "link2"))["error"] == {
            "code": -32603,
            "message": "File exists (os error 17)",
        }
        assert (await copy("fifo", "fifo2"))["error"] == {
            "code": -32600,
            "message": "fs/copy only supports regular files, directories, and symlinks",
        }
        assert (await copy("f.txt", "d"))["error"]["message"] == "Is a directory (os error 21)"
        assert c.assert_schema_valid()


async def test_watch_reports_changes_to_the_watching_connection_only(
    tmp_path: Path,
) -> None:
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / "a").write_text("a")
    async with open_app(tmp_path / "home") as app:
        watcher, other = await client(app), await client(app)
        assert await watcher.call("fs/watch", {"path": str(root), "watchId": "dir"}) == {
            "path": str(root)
        }
        await watcher.call("fs/watch", {"path": f"{root}/a", "watchId": "file"})
        await watcher.call("fs/watch", {"path": f"{root}/later", "watchId": "missing"})
        assert await watcher.error("fs/watch", {"path": str(root), "watchId": "dir"}) == {
            "code": -32600,
            "message": "watchId already exists: dir",
        }
        # `other` may reuse the id: watch ids are per connection
        await other.call("fs/watch", {"path": str(root / "sub"), "watchId": "dir"})

        (root / "a").write_text("changed")
        (root / "b").write_text("new")
        (root / "sub" / "deep").write_text("not reported to a non-recursive watch of root")
        changed = await watcher.notification("fs/changed", watchId="dir")
        assert changed["changedPaths"] == [f"{root}/a", f"{root}/b"]
        changed = await watcher.notification("fs/changed", watchId="file")
        assert changed["changedPaths"] == [f"{root}/a"]
        assert await other.notification("fs/changed") == {
            "watchId": "dir",
            "changedPaths": [f"{root}/sub/deep"],
        }

        (root / "later").write_text("created")
        changed = await watcher.notification("fs/changed", watchId="missing")
        assert changed["changedPaths"] == [f"{root}/later"]
        assert await watcher.call("fs/unwatch", {"watchId": "missing"}) == {}
        assert await watcher.call("fs/unwatch", {"watchId": "unknown"}) == {}
        watcher.assert_schema_valid()
        other.assert_schema_valid()


async def test_unwatch_and_disconnect_stop_notifications(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    async with open_app(tmp_path / "home") as app:
        kept, dropped = await client(app), await client(app)
        await kept.call("fs/watch", {"path": str(root), "watchId": "k"})
        await kept.call("fs/watch", {"path": str(root), "watchId": "gone"})
        await dropped.call("fs/watch", {"path": str(root), "watchId": "d"})
        await kept.call("fs/unwatch", {"watchId": "gone"})
        dropped.disconnect()
        (root / "x").write_text("x")
        await kept.notification("fs/changed", watchId="k")
        with trio.move_on_after(0.5):  # past the debounce window: nothing else may arrive
            await kept.notification("fs/changed", watchId="gone")
            pytest.fail("an unwatched watch was notified")
        assert dropped.received("fs/changed") == []


async def test_watch_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from appserver.fs import watch

    monkeypatch.setattr(watch, "MAX_WATCHES_PER_CONNECTION", 2)
    monkeypatch.setattr(watch, "MAX_PENDING_PATHS", 3)
    root = tmp_path / "w"
    root.mkdir()
    async with open_app(tmp_path / "home") as app:
        c = await client(app)
        await c.call("fs/watch", {"path": str(root), "watchId": "one"})
        await c.call("fs/watch", {"path": str(root / "x"), "watchId": "two"})
        assert await c.error("fs/watch", {"path": str(root), "watchId": "three"}) == {
            "code": -32600,
            "message": "too many fs watches on this connection (at most 2)",
        }
        await c.call("fs/unwatch", {"watchId": "two"})
        for name in "abcdef":
            (root / name).write_text(name)
        # more distinct paths than a notification may carry: the watched path stands for them
        changed = await c.notification("fs/changed", watchId="one")
        assert changed["changedPaths"] in ([str(root)], [str(root / n) for n in "abc"])
        assert c.assert_schema_valid()
