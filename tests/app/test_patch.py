"""Codex's `apply_patch` format (appserver/app/patch.py): parsing, matching, planning, writing —
examples from Codex's apply-patch crate and hypothesis properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.app import patch
from appserver.app.patch import (
    AddFile,
    Chunk,
    DeleteFile,
    PatchError,
    UpdateFile,
    apply_chunks,
    parse_patch,
    plan_patch,
    write_changes,
)

# -- examples --------------------------------------------------------------------------------


def test_parses_every_hunk_kind() -> None:
    text = """*** Begin Patch
*** Add File: path/add.py
+abc
+def
*** Delete File: path/delete.py
*** Update File: path/update.py
*** Move to: path/update2.py
@@ def f():
-    pass
+    return 123
*** End Patch"""
    assert parse_patch(text) == [
        AddFile("path/add.py", "abc\ndef\n"),
        DeleteFile("path/delete.py"),
        UpdateFile(
            "path/update.py",
            "path/update2.py",
            (Chunk("def f():", ("    pass",), ("    return 123",)),),
        ),
    ]


def test_the_first_chunk_may_omit_its_context_marker_and_end_of_file_anchors() -> None:
    text = """*** Begin Patch
*** Update File: file2.py
 import foo
+bar
*** End of File
*** End Patch"""
    (hunk,) = parse_patch(text)
    assert hunk == UpdateFile(
        "file2.py", None, (Chunk(None, ("import foo",), ("import foo", "bar"), True),)
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bad", "invalid patch: The first line of the patch must be '*** Begin Patch'"),
        (
            "*** Begin Patch\nbad",
            "invalid patch: The last line of the patch must be '*** End Patch'",
        ),
        (
            "*** Begin Patch\n*** Update File: test.py\n*** End Patch",
            "invalid hunk at line 2, Update file hunk for path 'test.py' is empty",
        ),
        (
            "*** Begin Patch\n*** Frobnicate File: foo\n*** End Patch",
            "invalid hunk at line 2, '*** Frobnicate File: foo' is not a valid hunk header. Valid "
            "hunk headers: '*** Add File: {path}', '*** Delete File: {path}', "
            "'*** Update File: {path}'",
        ),
        (
            "*** Begin Patch\n*** Update File: a\n@@\n bar\n@@ x\n*** End Patch",
            "invalid hunk at line 6, Update hunk does not contain any lines",
        ),
    ],
)
def test_errors_say_what_codex_says(text: str, message: str) -> None:
    with pytest.raises(PatchError) as raised:
        parse_patch(text)
    assert str(raised.value) == message


def test_a_heredoc_wrapped_patch_and_padded_markers_are_accepted() -> None:
    text = "<<'EOF'\n  *** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch  \nEOF\n"
    assert parse_patch(text) == [AddFile("a.txt", "x\n")]


def test_matching_ignores_trailing_and_surrounding_whitespace_then_punctuation() -> None:
    original = "alpha  \n    beta\nsay \u201chi\u201d \u2014 ok\n"
    chunks = (
        Chunk(None, ("alpha",), ("ALPHA",)),
        Chunk(None, ("beta",), ("BETA",)),
        Chunk(None, ('say "hi" - ok',), ("bye",)),
    )
    assert apply_chunks(original, chunks, "f") == "ALPHA\nBETA\nbye\n"


def test_chunks_are_found_after_their_context_line_in_order() -> None:
    original = "def a():\n    return 1\n\ndef b():\n    return 1\n"
    chunks = (Chunk("def b():", ("    return 1",), ("    return 2",)),)
    assert (
        apply_chunks(original, chunks, "f") == "def a():\n    return 1\n\ndef b():\n    return 2\n"
    )


def test_an_unmatched_chunk_names_the_lines() -> None:
    with pytest.raises(PatchError, match="Failed to find expected lines in f:\nnope"):
        apply_chunks("a\n", (Chunk(None, ("nope",), ("x",)),), "f")
    with pytest.raises(PatchError, match="Failed to find context 'ctx' in f"):
        apply_chunks("a\n", (Chunk("ctx", ("a",), ("x",)),), "f")


def test_plan_and_write_add_update_move_delete(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    text = """*** Begin Patch
*** Add File: new/hello.txt
+Hello
*** Update File: keep.txt
*** Move to: moved.txt
@@
 one
-two
+TWO
*** Delete File: gone.txt
*** End Patch"""
    changes = plan_patch(text, str(tmp_path))
    assert [c.wire() for c in changes] == [
        {"path": str(tmp_path / "new/hello.txt"), "kind": {"type": "add"}, "diff": "Hello\n"},
        {
            "path": str(tmp_path / "keep.txt"),
            "kind": {"type": "update", "move_path": str(tmp_path / "moved.txt")},
            "diff": "@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
        },
        {"path": str(tmp_path / "gone.txt"), "kind": {"type": "delete"}, "diff": "bye\n"},
    ]
    assert (tmp_path / "keep.txt").read_text() == "one\ntwo\nthree\n"  # planning writes nothing
    summary = write_changes(changes)
    assert summary == (
        "Success. Updated the following files:\nA new/hello.txt\nM keep.txt\nD gone.txt\n"
    )
    assert (tmp_path / "new/hello.txt").read_text() == "Hello\n"
    assert (tmp_path / "moved.txt").read_text() == "one\nTWO\nthree\n"
    assert not (tmp_path / "keep.txt").exists()
    assert not (tmp_path / "gone.txt").exists()


def test_planning_a_missing_file_fails_before_anything_is_written(tmp_path: Path) -> None:
    text = "*** Begin Patch\n*** Add File: a.txt\n+x\n*** Delete File: missing.txt\n*** End Patch"
    with pytest.raises(PatchError, match="Failed to read file to delete"):
        plan_patch(text, str(tmp_path))
    assert not (tmp_path / "a.txt").exists()


# -- properties ------------------------------------------------------------------------------

# Lines a patch can carry unambiguously: no newline, no leading `*` (a marker), unique-ish.
line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r*@"),
    max_size=12,
).map(lambda s: s.strip())


def render(hunks: list[AddFile | DeleteFile | UpdateFile]) -> str:
    out = ["*** Begin Patch"]
    for hunk in hunks:
        if isinstance(hunk, AddFile):
            out.append(f"*** Add File: {hunk.path}")
            out += [f"+{x}" for x in hunk.contents.splitlines()]
        elif isinstance(hunk, DeleteFile):
            out.append(f"*** Delete File: {hunk.path}")
        else:
            out.append(f"*** Update File: {hunk.path}")
            if hunk.move_path:
                out.append(f"*** Move to: {hunk.move_path}")
            for chunk in hunk.chunks:
                out.append("@@" if chunk.change_context is None else f"@@ {chunk.change_context}")
                out += [f"-{x}" for x in chunk.old_lines]
                out += [f"+{x}" for x in chunk.new_lines]
                if chunk.is_end_of_file:
                    out.append("*** End of File")
    out.append("*** End Patch")
    return "\n".join(out)


path = st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}\.txt", fullmatch=True)
chunk = st.builds(
    Chunk,
    st.none() | line.filter(bool),
    st.lists(line, min_size=1, max_size=4).map(tuple),
    st.lists(line, max_size=4).map(tuple),
    st.booleans(),
)
hunk = st.one_of(
    st.builds(
        AddFile, path, st.lists(line, max_size=5).map(lambda ls: "".join(f"{x}\n" for x in ls))
    ),
    st.builds(DeleteFile, path),
    st.builds(
        UpdateFile, path, st.none() | path, st.lists(chunk, min_size=1, max_size=3).map(tuple)
    ),
)


@given(st.lists(hunk, max_size=5))
def test_rendered_patches_parse_back_to_their_hunks(
    hunks: list[AddFile | DeleteFile | UpdateFile],
) -> None:
    assert parse_patch(render(hunks)) == hunks


@given(st.text(max_size=300))
def test_any_text_parses_or_fails_with_a_patch_error(text: str) -> None:
    try:
        parse_patch(text)
    except PatchError:
        pass


@given(
    st.lists(line, max_size=8),
    st.lists(line, min_size=1, max_size=3),
    st.lists(line, max_size=8),
    st.lists(line, max_size=3),
)
def test_replacing_a_unique_block_changes_only_that_block(
    before: list[str], old: list[str], after: list[str], new: list[str]
) -> None:
    # A file ending in an empty line loses it to the final newline, as in Codex; end with text.
    marker, end = ["<<unique marker>>"], ["<<end>>"]
    after = after + end
    original = "".join(f"{x}\n" for x in before + marker + old + after)
    result = apply_chunks(original, (Chunk(None, tuple(marker + old), tuple(marker + new)),), "f")
    assert result == "".join(f"{x}\n" for x in before + marker + new + after)


@given(st.lists(line, max_size=8), st.lists(line.filter(bool), min_size=1, max_size=3))
def test_a_pure_addition_appends(lines: list[str], added: list[str]) -> None:
    lines = [*lines, "<<end>>"]
    original = "".join(f"{x}\n" for x in lines)
    result = apply_chunks(original, (Chunk(None, (), tuple(added)),), "f")
    assert result == "".join(f"{x}\n" for x in lines + added)


@given(st.lists(line, min_size=1, max_size=10), st.data())
def test_unified_diff_is_empty_only_for_equal_texts(lines: list[str], data: st.DataObject) -> None:
    old = "".join(f"{x}\n" for x in lines)
    index = data.draw(st.integers(0, len(lines) - 1))
    changed = [*lines[:index], lines[index] + "!", *lines[index + 1 :]]
    new = "".join(f"{x}\n" for x in changed)
    assert patch.unified_diff(old, old) == ""
    diff = patch.unified_diff(old, new)
    assert diff.startswith("@@ ")
    assert f"+{changed[index]}\n" in diff
