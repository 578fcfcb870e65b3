"""A query run against the reference scorer entry by entry, whatever the order of its work, and
its first results before its scan is complete."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.fs import fuzzy_score
from appserver.fs.file_index import FileIndex, _prepare
from appserver.fs.file_search import QueryRun


def index_of(root: str, files: list[str]) -> FileIndex:
    """As `build_index` prepares a listing: the files, then the directories that hold them."""
    files = list(dict.fromkeys(files))
    directories = {f.rpartition("/")[0] for f in files} - {""}
    for directory in list(directories):
        while "/" in directory:
            directory = directory.rpartition("/")[0]
            directories.add(directory)
    paths = files + sorted(directories)
    index = FileIndex(root, paths, [False] * len(files) + [True] * len(directories))
    _prepare(index)
    return index


def reference(query: str, indexes: list[FileIndex], limit: int) -> list[dict[str, Any]]:
    """Every entry scored on its own by `score_entry`; the best `limit` by score, then shorter
    path; shown by score, then path."""
    scored = []
    for position, index in enumerate(indexes):
        for path, is_directory in zip(index.paths, index.is_directory, strict=True):
            found = fuzzy_score.score_entry(path, query, is_directory)
            if found is not None:
                scored.append((found[0], path, position, is_directory, found[1]))
    scored.sort(key=lambda s: (-s[0], len(s[1]), s[1], s[2]))
    best = sorted(scored[:limit], key=lambda s: (-s[0], s[1], s[2]))
    return [
        {
            "root": indexes[position].root,
            "path": path,
            "match_type": "directory" if is_directory else "file",
            "file_name": path.rsplit("/", 1)[-1],
            "score": score,
            "indices": indices,
        }
        for score, path, position, is_directory, indices in best
    ]


segment = st.text(alphabet="abcAB_.-1é", min_size=1, max_size=6)
trees = st.lists(st.lists(segment, min_size=1, max_size=4).map("/".join), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    roots=st.lists(trees, min_size=1, max_size=2),
    query=st.text(alphabet="abcAB_.1 É", min_size=1, max_size=5).filter(str.strip),
    limit=st.integers(1, 8),
    chunk=st.integers(1, 50),
    batch=st.integers(1, 20),
    first_batch=st.integers(1, 20),
)
def test_results_are_the_references_whatever_the_chunks_and_batches(
    roots: list[list[str]], query: str, limit: int, chunk: int, batch: int, first_batch: int
) -> None:
    indexes = [index_of(f"/root{i}", files) for i, files in enumerate(roots)]
    run = QueryRun(query, indexes, limit, chunk=chunk, batch=batch, first_batch=first_batch)
    assert run.run() == reference(query, indexes, limit)


def test_the_first_results_come_before_the_scan_reaches_the_best_match() -> None:
    # Only paths match `zq` (no file name holds it); the best match is listed last.
    files = [f"z{i}/q{i}.txt" for i in range(400)] + [f"pkg{i}/mod{i}.py" for i in range(3600)]
    files.append("zqx/a.txt")
    index = index_of("/r", files)
    run = QueryRun("zq", [index], 10, chunk=1000)
    while not run.has_results:
        assert not run.step()
    first = [f["path"] for f in run.results()]
    assert first
    assert not {"zqx", "zqx/a.txt"} & set(first)
    assert not run.done
    final = run.run()
    assert [f["path"] for f in final[:2]] == ["zqx", "zqx/a.txt"]
    assert final == reference("zq", [index], 10)
