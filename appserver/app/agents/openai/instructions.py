"""The system instructions: a short base prompt, the environment, and the project's AGENTS.md.

AGENTS.md discovery follows Codex's: from the cwd up to the project root (the nearest
directory with a `.git`; without one, the cwd alone), every `AGENTS.override.md` or else
`AGENTS.md`, root first, concatenated and cut at 32 KiB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

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


def project_docs(cwd: str | Path) -> list[tuple[Path, str]]:
    """The AGENTS.md files that apply in `cwd`, root first, with their text."""
    start = Path(cwd).resolve()
    directories = [start]
    root = None
    for directory in [start, *start.parents]:
        if (directory / ".git").exists():
            root = directory
            break
    if root is not None:
        directories = []
        for directory in [start, *start.parents]:
            directories.append(directory)
            if directory == root:
                break
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
