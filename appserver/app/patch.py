"""Codex's `apply_patch` format: parsing, planning against the files, and writing.

    *** Begin Patch
    *** Add File: hello.txt
    +Hello
    *** Update File: src/app.py
    *** Move to: src/main.py
    @@ def greet():
    -    print("hi")
    +    print("hello")
    *** Delete File: old.txt
    *** End Patch

Modelled on Codex's `apply-patch` crate (parser.rs, seek_sequence.rs, lib.rs), with its error
messages: markers may carry surrounding whitespace, the patch may be wrapped in a `<<'EOF'`
heredoc, the first chunk of an update may omit its `@@` line, a blank line inside a chunk is
an empty context line, `*** End of File` anchors a chunk at the end of the file. Chunks are
found in order from where the previous one ended, matching lines exactly, then ignoring
trailing whitespace, then surrounding whitespace, then typographic punctuation.

`parse_patch` is pure; `plan_patch` reads the files and computes every change (nothing is
written), so a patch that cannot apply fails before anybody is asked to approve it;
`write_changes` writes a plan.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from typing import Final, Literal

import attrs

BEGIN_PATCH: Final = "*** Begin Patch"
END_PATCH: Final = "*** End Patch"
ADD_FILE: Final = "*** Add File: "
DELETE_FILE: Final = "*** Delete File: "
UPDATE_FILE: Final = "*** Update File: "
MOVE_TO: Final = "*** Move to: "
END_OF_FILE: Final = "*** End of File"
CHANGE_CONTEXT: Final = "@@ "
EMPTY_CHANGE_CONTEXT: Final = "@@"
HEREDOC_STARTS: Final = ("<<EOF", "<<'EOF'", '<<"EOF"')


class PatchError(ValueError):
    """The patch does not parse, or does not apply to the files as they are."""


@attrs.frozen
class Chunk:
    """One `@@` section of an update: the lines to find and what replaces them."""

    change_context: str | None
    old_lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    is_end_of_file: bool = False


@attrs.frozen
class AddFile:
    path: str
    contents: str


@attrs.frozen
class DeleteFile:
    path: str


@attrs.frozen
class UpdateFile:
    path: str
    move_path: str | None
    chunks: tuple[Chunk, ...]


Hunk = AddFile | DeleteFile | UpdateFile


# -- parsing --------------------------------------------------------------------------------


def parse_patch(text: str) -> list[Hunk]:
    """The hunks of a patch; `PatchError` with Codex's message if it is not one."""
    lines = text.strip().splitlines()
    try:
        _check_boundaries(lines)
    except PatchError:
        if (
            len(lines) >= 4
            and lines[0].strip() in HEREDOC_STARTS
            and lines[-1].strip().endswith("EOF")
        ):
            lines = lines[1:-1]
            _check_boundaries(lines)
        else:
            raise
    hunks: list[Hunk] = []
    remaining = lines[1:-1]
    line_number = 2
    while remaining:
        hunk, used = _parse_hunk(remaining, line_number)
        hunks.append(hunk)
        line_number += used
        remaining = remaining[used:]
    return hunks


def _check_boundaries(lines: Sequence[str]) -> None:
    if not lines or lines[0].strip() != BEGIN_PATCH:
        raise PatchError(f"invalid patch: The first line of the patch must be '{BEGIN_PATCH}'")
    if len(lines) < 2 or lines[-1].strip() != END_PATCH:
        raise PatchError(f"invalid patch: The last line of the patch must be '{END_PATCH}'")


def _hunk_error(message: str, line_number: int) -> PatchError:
    return PatchError(f"invalid hunk at line {line_number}, {message}")


def _parse_hunk(lines: Sequence[str], line_number: int) -> tuple[Hunk, int]:
    first = lines[0].strip()
    if first.startswith(ADD_FILE):
        contents: list[str] = []
        for line in lines[1:]:
            if not line.startswith("+"):
                break
            contents.append(line[1:] + "\n")
        return AddFile(first[len(ADD_FILE) :], "".join(contents)), 1 + len(contents)
    if first.startswith(DELETE_FILE):
        return DeleteFile(first[len(DELETE_FILE) :]), 1
    if first.startswith(UPDATE_FILE):
        path = first[len(UPDATE_FILE) :]
        used = 1
        move_path = None
        if len(lines) > 1 and lines[1].startswith(MOVE_TO):
            move_path = lines[1][len(MOVE_TO) :]
            used += 1
        chunks: list[Chunk] = []
        while used < len(lines):
            line = lines[used]
            if not line.strip():
                used += 1
                continue
            if line.startswith("***"):
                break
            chunk, chunk_lines = _parse_chunk(lines[used:], line_number + used, not chunks)
            chunks.append(chunk)
            used += chunk_lines
        if not chunks:
            raise _hunk_error(f"Update file hunk for path '{path}' is empty", line_number)
        return UpdateFile(path, move_path, tuple(chunks)), used
    raise _hunk_error(
        f"'{first}' is not a valid hunk header. Valid hunk headers: '*** Add File: {{path}}', "
        "'*** Delete File: {path}', '*** Update File: {path}'",
        line_number,
    )


def _parse_chunk(
    lines: Sequence[str], line_number: int, allow_missing_context: bool
) -> tuple[Chunk, int]:
    if lines[0] == EMPTY_CHANGE_CONTEXT:
        context, start = None, 1
    elif lines[0].startswith(CHANGE_CONTEXT):
        context, start = lines[0][len(CHANGE_CONTEXT) :], 1
    else:
        if not allow_missing_context:
            raise _hunk_error(
                f"Expected update hunk to start with a @@ context marker, got: '{lines[0]}'",
                line_number,
            )
        context, start = None, 0
    if start >= len(lines):
        raise _hunk_error("Update hunk does not contain any lines", line_number + 1)
    old: list[str] = []
    new: list[str] = []
    end_of_file = False
    used = 0
    for line in lines[start:]:
        if line == END_OF_FILE:
            if used == 0:
                raise _hunk_error("Update hunk does not contain any lines", line_number + 1)
            end_of_file = True
            used += 1
            break
        marker = line[:1]
        if marker == "":
            old.append("")
            new.append("")
        elif marker == " ":
            old.append(line[1:])
            new.append(line[1:])
        elif marker == "+":
            new.append(line[1:])
        elif marker == "-":
            old.append(line[1:])
        else:
            if used == 0:
                raise _hunk_error(
                    f"Unexpected line found in update hunk: '{line}'. Every line should start "
                    "with ' ' (context line), '+' (added line), or '-' (removed line)",
                    line_number + 1,
                )
            break
        used += 1
    return Chunk(context, tuple(old), tuple(new), end_of_file), used + start


# -- matching -------------------------------------------------------------------------------

_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
            " ",
        ),
    }
)


def seek_sequence(
    lines: Sequence[str], pattern: Sequence[str], start: int, end_of_file: bool
) -> int | None:
    """Where `pattern` occurs in `lines` at or after `start` (at the end first if
    `end_of_file`), matching ever more loosely; None if it does not."""
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    first = len(lines) - len(pattern) if end_of_file else start
    last = len(lines) - len(pattern)
    for normalise in (
        lambda s: s,
        str.rstrip,
        str.strip,
        lambda s: s.strip().translate(_PUNCTUATION),
    ):
        wanted = [normalise(p) for p in pattern]
        for i in range(first, last + 1):
            if all(normalise(lines[i + k]) == wanted[k] for k in range(len(pattern))):
                return i
    return None


def apply_chunks(original: str, chunks: Sequence[Chunk], path: str) -> str:
    """The new contents of a file after an update's chunks (`PatchError` if one does not
    match)."""
    lines = original.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    replacements: list[tuple[int, int, list[str]]] = []
    index = 0
    for chunk in chunks:
        if chunk.change_context is not None:
            found = seek_sequence(lines, [chunk.change_context], index, False)
            if found is None:
                raise PatchError(f"Failed to find context '{chunk.change_context}' in {path}")
            index = found + 1
        if not chunk.old_lines:
            at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
            replacements.append((at, 0, list(chunk.new_lines)))
            continue
        pattern, new = list(chunk.old_lines), list(chunk.new_lines)
        found = seek_sequence(lines, pattern, index, chunk.is_end_of_file)
        if found is None and pattern[-1] == "":
            pattern = pattern[:-1]
            if new and new[-1] == "":
                new = new[:-1]
            found = seek_sequence(lines, pattern, index, chunk.is_end_of_file)
        if found is None:
            expected = "\n".join(chunk.old_lines)
            raise PatchError(f"Failed to find expected lines in {path}:\n{expected}")
        replacements.append((found, len(pattern), new))
        index = found + len(pattern)
    replacements.sort(key=lambda r: r[0])
    for start, length, new in reversed(replacements):
        lines[start : start + length] = new
    if not lines or lines[-1] != "":
        lines.append("")
    return "\n".join(lines)


def unified_diff(old: str, new: str) -> str:
    """A unified diff without file headers, one line of context (as Codex's items carry)."""
    diff = difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=1)
    body = [line if line.endswith("\n") else line + "\n" for line in list(diff)[2:]]
    return "".join(body)


# -- planning and writing -------------------------------------------------------------------


@attrs.frozen
class FileChange:
    """One file's change, computed but not written. `path` and `move_path` are absolute."""

    kind: Literal["add", "delete", "update"]
    path: str
    display_path: str
    old: str | None
    new: str | None
    move_path: str | None = None

    @property
    def target(self) -> str:
        return self.move_path or self.path

    @property
    def written_paths(self) -> tuple[str, ...]:
        """Every path this change creates, overwrites or removes."""
        return (self.path, self.move_path) if self.move_path else (self.path,)

    def wire(self) -> dict[str, object]:
        """The item's `FileUpdateChange`: the content for add and delete, the diff for update."""
        if self.kind == "add":
            return {"path": self.path, "kind": {"type": "add"}, "diff": self.new or ""}
        if self.kind == "delete":
            return {"path": self.path, "kind": {"type": "delete"}, "diff": self.old or ""}
        return {
            "path": self.path,
            "kind": {"type": "update", "move_path": self.move_path},
            "diff": unified_diff(self.old or "", self.new or ""),
        }


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PatchError(f"Failed to read {what} {path}: {exc}") from exc


def plan_patch(text: str, cwd: str) -> list[FileChange]:
    """Every change the patch makes, read against the files under `cwd` (nothing written)."""
    hunks = parse_patch(text)
    if not hunks:
        raise PatchError("No files were modified.")
    changes: list[FileChange] = []
    for hunk in hunks:
        path = os.path.normpath(os.path.join(cwd, hunk.path))
        if isinstance(hunk, AddFile):
            changes.append(FileChange("add", path, hunk.path, None, hunk.contents))
        elif isinstance(hunk, DeleteFile):
            changes.append(
                FileChange("delete", path, hunk.path, _read(path, "file to delete"), None)
            )
        else:
            old = _read(path, "file to update")
            new = apply_chunks(old, hunk.chunks, path)
            move = os.path.normpath(os.path.join(cwd, hunk.move_path)) if hunk.move_path else None
            changes.append(FileChange("update", path, hunk.path, old, new, move))
    return changes


def write_changes(changes: Sequence[FileChange]) -> str:
    """Write a plan; returns Codex's summary (`Success. Updated the following files:` …).
    `OSError` if a write fails (the changes before it stay written)."""
    summary: dict[str, list[str]] = {"A": [], "M": [], "D": []}
    for change in changes:
        if change.kind == "delete":
            os.remove(change.path)
            summary["D"].append(change.display_path)
            continue
        target = change.target
        parent = os.path.dirname(target)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(change.new or "")
        if change.move_path and change.move_path != change.path:
            os.remove(change.path)
        summary["A" if change.kind == "add" else "M"].append(change.display_path)
    listed = [f"{mark} {path}\n" for mark, paths in summary.items() for path in paths]
    return "Success. Updated the following files:\n" + "".join(listed)
