"""The system instructions: a short base prompt, the environment, and the project's AGENTS.md.

AGENTS.md discovery follows Codex's: from the cwd up to the project root (the nearest
directory with a `.git`; without one, the cwd alone), every `AGENTS.override.md` or else
`AGENTS.md`, root first, concatenated and cut at 32 KiB.

`docs_signature` is what that discovery depends on (which directories, and each candidate
file's inode, size and times), found with a few `stat` calls and no reads, so that instructions
built once can be reused for as long as it is unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, TypeAlias

MAX_PROJECT_DOC_BYTES: Final = 32 * 1024
DOC_NAMES: Final = ("AGENTS.override.md", "AGENTS.md")

BASE_INSTRUCTIONS: Final = """\
You are a coding agent running in appserver, a Codex-compatible app server. You and the user \
share a workspace; help them with software engineering tasks in it.

- Use the `shell` tool to run commands (pass `command` as an argv array, e.g. \
["bash", "-lc", "ls -la"]); prefer `rg` for searching. Commands may need the user's approval.
- Use the `apply_patch` tool to create, edit or delete files; never write files with shell \
redirections when a patch will do.
- For multi-step work keep a plan with `update_plan` (at most one step in progress).
- Be concise. When you are done, say what you changed and how you checked it."""


Stamp: TypeAlias = tuple[int, int, int, int] | None
Signature: TypeAlias = tuple[tuple[str, ...], tuple[Stamp, ...]]


def _directories(cwd: str | Path) -> list[str]:
    """The directories whose AGENTS.md apply in `cwd`: from it up to the project root (the
    nearest with a `.git`); without a root, `cwd` alone. Deepest first. (os.path rather than
    pathlib: `docs_signature` runs this on the event loop, and pathlib costs twice as much.)"""
    start = directory = os.path.realpath(cwd)
    directories = []
    while True:
        directories.append(directory)
        if os.path.exists(os.path.join(directory, ".git")):
            return directories
        parent = os.path.dirname(directory)
        if parent == directory:
            return [start]
        directory = parent


def _stamp(path: str) -> Stamp:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def docs_signature(cwd: str | Path) -> Signature:
    """What `project_docs(cwd)` reads depends on: equal signatures, equal docs (up to an edit
    that keeps a file's size within one tick of the file system's clock)."""
    directories = tuple(_directories(cwd))
    stamps = tuple(_stamp(os.path.join(d, name)) for d in directories for name in DOC_NAMES)
    return directories, stamps


def project_docs(cwd: str | Path) -> list[tuple[Path, str]]:
    """The AGENTS.md files that apply in `cwd`, root first, with their text."""
    directories = [Path(d) for d in _directories(cwd)]
    docs: list[tuple[Path, str]] = []
    budget = MAX_PROJECT_DOC_BYTES
    for directory in reversed(directories):
        for name in DOC_NAMES:
            path = directory / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            text = data[:budget].decode("utf-8", errors="replace").strip()
            budget -= min(len(data), budget)
            if text:
                docs.append((path, text))
            break
        if budget <= 0:
            break
    return docs


def build_instructions(cwd: str, approval_policy: str) -> str:
    parts = [
        BASE_INSTRUCTIONS,
        "<environment_context>\n"
        f"  <cwd>{cwd}</cwd>\n"
        f"  <approval_policy>{approval_policy}</approval_policy>\n"
        "  <shell>bash</shell>\n"
        "</environment_context>",
    ]
    docs = project_docs(cwd)
    if docs:
        body = "\n\n".join(text for _, text in docs)
        parts.append(
            f"# AGENTS.md instructions for {cwd}\n\n<INSTRUCTIONS>\n{body}\n</INSTRUCTIONS>"
        )
    return "\n\n".join(parts)


def signed_instructions(cwd: str, approval_policy: str) -> tuple[Signature, str]:
    """`build_instructions` with the signature of the docs it read, taken before reading them
    (a change meanwhile makes the next comparison differ, never hides it)."""
    signature = docs_signature(cwd)
    return signature, build_instructions(cwd, approval_policy)
