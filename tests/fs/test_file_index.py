"""Which entries a fuzzy search sees: git's ignore rules inside a repository, everything (but
`.git`) outside one, hidden files included."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appserver.fs.file_index import build_index


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def touch(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)


def entries(root: Path | str) -> dict[str, bool]:
    index = build_index(str(root))
    return dict(zip(index.paths, index.is_directory, strict=True))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "core.excludesFile", str(tmp_path / "global-excludes"))
    (tmp_path / "global-excludes").write_text("*.swp\n")
    touch(
        root,
        ".gitignore",
        "src/main.rs",
        "src/.gitignore",
        "src/gen/out.rs",
        "build/app",
        "debug.log",
        ".hidden/secret",
        "notes.swp",
        "private.txt",
        "tracked_then_deleted.txt",
    )
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / ".gitignore").write_text("gen/\n")
    (root / ".git" / "info" / "exclude").write_text("private.txt\n")
    git(root, "add", "tracked_then_deleted.txt")
    (root / "tracked_then_deleted.txt").unlink()
    return root


def test_git_ignore_rules_apply_inside_a_repository(repo: Path) -> None:
    assert entries(repo) == {
        ".gitignore": False,
        ".hidden": True,
        ".hidden/secret": False,
        "src": True,
        "src/.gitignore": False,
        "src/main.rs": False,
    }


def test_a_subdirectory_root_lists_relative_to_itself(repo: Path) -> None:
    assert entries(repo / "src") == {".gitignore": False, "main.rs": False}


def test_outside_a_repository_nothing_is_ignored_but_git_dirs(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    touch(plain, ".gitignore", "ignored.txt", "sub/kept.txt", ".dot")
    (plain / ".gitignore").write_text("ignored.txt\n")
    nested = plain / "nested"
    nested.mkdir()
    git(nested, "init", "-q")
    touch(nested, ".gitignore", "a.py", "a.pyc")
    (nested / ".gitignore").write_text("*.pyc\n")
    assert entries(plain) == {
        ".dot": False,
        ".gitignore": False,
        "ignored.txt": False,
        "nested": True,
        "nested/.gitignore": False,
        "nested/a.py": False,
        "sub": True,
        "sub/kept.txt": False,
    }


def test_a_missing_root_has_no_entries(tmp_path: Path) -> None:
    assert entries(tmp_path / "nope") == {}
