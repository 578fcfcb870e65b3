"""The entries a fuzzy file search looks at: every file and directory under a root, minus
what git ignores, prepared for matching.

Inside a git work tree the list is git's own (`git ls-files --cached --others
--exclude-standard`): `.gitignore` files at every level, `.git/info/exclude` and the user's
`core.excludesFile` apply exactly as git applies them, which is what Codex's walker (the
`ignore` crate with `require_git`) emulates. Outside one, the tree is walked with `os.scandir`
and nothing is ignored (as Codex: `.gitignore` only counts in a repository), except that a
nested repository found on the way is listed by git. Hidden files are included, as in Codex.
Directories are those that hold a listed entry. Differences from Codex 0.169, on purpose:
`.git` itself is never listed (Codex lists its hooks and objects), nor are `.ignore` files
honoured, and a symlinked directory is not entered inside a repository (git does not).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterable
from typing import Any, Final

import attrs

from appserver.fs import fuzzy_score

log = logging.getLogger(__name__)

GIT_TIMEOUT_SECONDS: Final = 60.0


@attrs.define(eq=False)
class FileIndex:
    root: str
    paths: list[str]
    is_directory: list[bool]
    #: `paths` normalized (case folded), one per line: the text queries are matched against.
    text: str = ""
    #: Each entry's own name, normalized, one per line.
    names_text: str = ""
    names: list[str] = attrs.Factory(list)
    #: Offsets of each line in `text` and `names_text` (numpy int64 arrays).
    offsets: Any = None
    name_offsets: Any = None
    #: Entries whose path is not ASCII (scored by the reference scorer).
    not_ascii: frozenset[int] = frozenset()
    #: `paths` normalized, as a list (the lines of `text`).
    lines: list[str] = attrs.Factory(list)
    #: Each entry's own name as it is spelled.
    file_names: list[str] = attrs.Factory(list)
    #: numpy arrays: `is_directory`, and the length of each line of `text` and `names_text`.
    directory_mask: Any = None
    lengths: Any = None
    name_lengths: Any = None

    def __len__(self) -> int:
        return len(self.paths)


def build_index(root: str) -> FileIndex:
    """List and prepare `root` (blocking: run it in a worker thread)."""
    files, directories = _list(root)
    paths = files + sorted(directories)
    index = FileIndex(root, paths, [False] * len(files) + [True] * len(directories))
    _prepare(index)
    return index


def _prepare(index: FileIndex) -> None:
    import numpy as np

    paths = index.paths
    joined = "\n".join(paths)
    if joined.isascii():
        text = joined.lower()
        index.not_ascii = frozenset()
    else:
        text = "\n".join(fuzzy_score.normalize(p) for p in paths)
        index.not_ascii = frozenset(i for i, p in enumerate(paths) if not p.isascii())
    normalized = text.split("\n") if paths else []
    index.lines = normalized
    index.file_names = [p.rpartition("/")[2] for p in paths]
    names = [p.rpartition("/")[2] for p in normalized]
    index.text = text + "\n"
    index.names_text = "\n".join(names) + "\n"
    index.names = names
    index.directory_mask = np.asarray(index.is_directory, bool)
    index.lengths = np.fromiter(map(len, normalized), np.int64, len(normalized))
    index.offsets = np.concatenate(([0], np.cumsum(index.lengths + 1)[:-1]))
    index.name_lengths = np.fromiter(map(len, names), np.int64, len(names))
    index.name_offsets = np.concatenate(([0], np.cumsum(index.name_lengths + 1)[:-1]))


def _list(root: str) -> tuple[list[str], set[str]]:
    if not os.path.isdir(root):
        return [], set()
    files = _git_files(root) if _inside_git(root) else _walk(root)
    directories: set[str] = set()
    for parent in {path.rpartition("/")[0] for path in files}:
        while parent and parent not in directories:
            directories.add(parent)
            parent = parent.rpartition("/")[0]
    return files, directories


def _inside_git(root: str) -> bool:
    try:
        done = subprocess.run(
            ["git", "-C", root, "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == b"true"


def _git_files(root: str) -> list[str]:
    def listing(*flags: str) -> list[str]:
        done = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", *flags],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            log.warning("git ls-files failed in %s: %s", root, done.stderr.decode(errors="replace"))
            return []
        return _utf8_paths(done.stdout.split(b"\0"))

    # `-t` tags each path: `H` tracked, `?` untracked, `R` tracked but deleted from disk.
    tagged = listing("-t", "--cached", "--others", "--deleted", "--exclude-standard")
    deleted = {t[2:] for t in tagged if t.startswith("R ")}
    return list(dict.fromkeys(t[2:] for t in tagged if t[2:] and t[2:] not in deleted))


def _utf8_paths(raw: Iterable[bytes]) -> list[str]:
    out = []
    for item in raw:
        try:
            out.append(item.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # Codex skips paths that are not UTF-8 too
    return out


def _walk(root: str) -> list[str]:
    files: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [("", root)]
    while stack:
        relative, directory = stack.pop()
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in seen:
                continue  # a symlink loop, or a directory reached twice
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError:
            continue
        if relative and any(e.name == ".git" for e in entries):
            prefix = relative + "/"
            files.extend(prefix + f for f in _git_files(directory))
            continue
        for entry in entries:
            name = entry.name
            if name == ".git":
                continue
            path = f"{relative}/{name}" if relative else name
            try:
                is_directory = entry.is_dir()  # follows links, as Codex's walker does
            except OSError:
                is_directory = False
            if is_directory:
                stack.append((path, entry.path))
            else:
                files.append(path)
    return _utf8_paths(p.encode("utf-8", "surrogateescape") for p in files)
