"""Blocking implementations of `fs/*`, run in a worker thread by the handlers.

Behaviour and texts follow Codex 0.169: failures of the operating system are `-32603` with
Rust's `io::Error` text (`No such file or directory (os error 2)`), misuse the client can fix is
`-32600`. Symlinks are followed where Codex follows them (read, write, metadata, listing) and
never while removing or copying (a link is removed or copied as a link). Two deliberate
differences, both about data safety: writes and file copies go to a temporary file in the same
directory that is fsynced and renamed over the target (then the directory is fsynced), so a
reader never sees a half-written file and nothing is reported written that is not on disk; and
copying a file onto itself leaves it intact (Codex truncates it).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from appserver.fs.base64_codec import Base64Error, decode_standard
from appserver.wire.errors import RpcError

COPY_NEEDS_RECURSIVE = "fs/copy requires recursive: true when sourcePath is a directory"
COPY_INTO_ITSELF = "fs/copy cannot copy a directory to itself or one of its descendants"
COPY_UNSUPPORTED = "fs/copy only supports regular files, directories, and symlinks"

_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp\Z", re.S)


def is_temporary_name(name: str) -> bool:
    """Whether `name` is one of the temporary files a write or copy renames into place."""
    return _TEMP_NAME.match(name) is not None


def os_error_text(exc: OSError) -> str:
    """An OSError as Rust's `io::Error` displays it."""
    if exc.errno is None:
        return str(exc)
    return f"{os.strerror(exc.errno)} (os error {exc.errno})"


@contextlib.contextmanager
def _as_rpc_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise RpcError.internal(os_error_text(exc)) from None


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_file(target: str, fill: Callable[[BinaryIO], None], mode: int | None) -> None:
    """Write a new file at `target` through a fsynced temporary file renamed over it."""
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


def _existing_mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


# -- the methods -------------------------------------------------------------------------------


def read_file(path: str) -> bytes:
    with _as_rpc_errors():
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise RpcError.invalid_request(f"path `{path}` is not a file")
        with open(path, "rb") as source:
            return source.read()


def write_file(path: str, data_base64: str) -> None:
    try:
        data = decode_standard(data_base64)
    except Base64Error as exc:
        raise RpcError.invalid_request(
            f"fs/writeFile requires valid base64 dataBase64: {exc}"
        ) from None
    # Through a symlink, as Codex's `fs::write` does: the link stays, its target is replaced.
    target = os.path.realpath(path)

    def fill(out: BinaryIO) -> None:
        out.write(data)

    with _as_rpc_errors():
        _replace_file(target, fill, _existing_mode(target))


def create_directory(path: str, recursive: bool) -> None:
    with _as_rpc_errors():
        if recursive:
            os.makedirs(path, exist_ok=True)
        else:
            os.mkdir(path)


def get_metadata(path: str) -> dict[str, Any]:
    with _as_rpc_errors():
        info = os.stat(path)
        is_symlink = stat.S_ISLNK(os.lstat(path).st_mode)
    return {
        "isDirectory": stat.S_ISDIR(info.st_mode),
        "isFile": stat.S_ISREG(info.st_mode),
        "isSymlink": is_symlink,
        # Python 3.11 has no statx birth time on Linux; Codex answers 0 when it has none too.
        "createdAtMs": 0,
        "modifiedAtMs": info.st_mtime_ns // 1_000_000,
    }


def read_directory(path: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with _as_rpc_errors(), os.scandir(path) as listing:
        for entry in listing:
            try:
                info = entry.stat()  # follows links; a dangling one is left out, as in Codex
            except OSError:
                continue
            entries.append(
                {
                    "fileName": entry.name,
                    "isDirectory": stat.S_ISDIR(info.st_mode),
                    "isFile": stat.S_ISREG(info.st_mode),
                }
            )
    return entries


def remove(path: str, recursive: bool, force: bool) -> None:
    with _as_rpc_errors():
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            if force:
                return
            raise
        if stat.S_ISDIR(mode):
            if recursive:
                shutil.rmtree(path)
            else:
                os.rmdir(path)
        else:
            os.unlink(path)


def copy(source: str, destination: str, recursive: bool) -> None:
    with _as_rpc_errors():
        mode = os.lstat(source).st_mode
        if stat.S_ISDIR(mode):
            if not recursive:
                raise RpcError.invalid_request(COPY_NEEDS_RECURSIVE)
            if _is_same_or_descendant(source, destination):
                raise RpcError.invalid_request(COPY_INTO_ITSELF)
            _copy_tree(source, destination)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(source), destination)
        elif stat.S_ISREG(mode):
            _copy_file(source, destination)
        else:
            raise RpcError.invalid_request(COPY_UNSUPPORTED)


def _copy_file(source: str, destination: str) -> None:
    with open(source, "rb") as src:
        mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
        _replace_file(destination, lambda out: shutil.copyfileobj(src, out), mode)


def _copy_tree(source: str, destination: str) -> None:
    os.makedirs(destination, exist_ok=True)
    with os.scandir(source) as listing:
        for entry in listing:
            target = os.path.join(destination, entry.name)
            if entry.is_dir(follow_symlinks=False):
                _copy_tree(entry.path, target)
            elif entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_file(follow_symlinks=False):
                _copy_file(entry.path, target)
            # FIFOs, sockets and devices inside a tree are skipped, as in Codex.


def _is_same_or_descendant(source: str, destination: str) -> bool:
    real_source = os.path.realpath(source, strict=True)
    # The destination may not exist yet: resolve its longest existing ancestor.
    existing, missing = destination, []
    while not os.path.exists(existing) and existing != "/":
        existing, tail = os.path.split(existing)
        missing.append(tail)
    resolved = os.path.join(os.path.realpath(existing), *reversed(missing))
    return resolved == real_source or resolved.startswith(real_source.rstrip("/") + "/")
