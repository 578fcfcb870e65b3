"""The fuzzy scorer against what the Codex 0.169 binary answered, and the batch scorer against
the reference one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.fs import fuzzy_batch, fuzzy_score

# (query, path, is_directory, score, indices): each one the real Codex 0.169 `fuzzyFileSearch`
CODEX_ANSWERS = [
    ("main", "src/main.rs", False, 65645, [4, 5, 6, 7]),
    ("main", ".hidden/secret_main", False, 65640, [15, 16, 17, 18]),
    ("main", "src/deep/mod_main.rs", False, 65640, [13, 14, 15, 16]),
    ("main", ".hmain", False, 65612, [2, 3, 4, 5]),
    ("Main", "src/main.rs", False, 65645, [4, 5, 6, 7]),
    ("src", "src", True, 131156, [0, 1, 2]),
    ("src", "src/main.rs", False, 84, [0, 1, 2]),
    ("src", "src/deep", True, 84, [0, 1, 2]),
    ("src", ".git/hooks/fsmonitor-watchman.sample", False, 65570, [12, 19, 24]),
    ("src", ".git/hooks/pre-commit.sample", False, 48, [9, 12, 15]),
    ("src", ".git/hooks/prepare-commit-msg.sample", False, 44, [9, 12, 19]),
    ("deep", "src/deep", True, 131181, [4, 5, 6, 7]),
    ("deep", "node_modules/pkg/index.js", False, 65, [2, 3, 10, 13]),
    ("dee", ".git/hooks/post-update.sample", False, 65572, [18, 21, 28]),
    ("dee", "src/deep", True, 84, [4, 5, 6]),
    ("main.rs", "src/main.rs", False, 196792, [4, 5, 6, 7, 8, 9, 10]),
    ("main.rs", "src/deep/mod_main.rs", False, 65712, [13, 14, 15, 16, 17, 18, 19]),
    ("abc", "abc", True, 131156, [0, 1, 2]),
    ("abc", "abcd.txt", False, 65620, [0, 1, 2]),
    ("abc", "xabc", False, 65592, [1, 2, 3]),
    ("xyzzy", "abc/xyzzy", True, 131206, [4, 5, 6, 7, 8]),
    ("su", "sub", True, 59, [0, 1]),
    ("txt", "sub/main.txt", False, 65616, [9, 10, 11]),
    ("ma in", "src/main.rs", False, 95, [4, 5, 6, 7]),
    ("ma in", ".git/hooks/fsmonitor-watchman.sample", False, 55, [16, 26, 27, 28]),
    ("srcmain", "src/main.rs", False, 181, [0, 1, 2, 4, 5, 6, 7]),
    ("srcmain", "src/deep/mod_main.rs", False, 168, [0, 1, 2, 13, 14, 15, 16]),
    ("READ", ".git/refs/heads", True, 88, [5, 6, 12, 13]),
    (
        "mainhand",
        "main66/event75/parser81/core19/util45/layout63/main_handler_gamma.toml",
        False,
        65738,
        [47, 48, 49, 50, 52, 53, 54, 55],
    ),
]


@pytest.mark.parametrize(("query", "path", "is_directory", "score", "indices"), CODEX_ANSWERS)
def test_scores_and_indices_are_codexs(
    query: str, path: str, is_directory: bool, score: int, indices: list[int]
) -> None:
    assert fuzzy_score.score_entry(path, query, is_directory) == (score, indices)


def test_no_match_is_none() -> None:
    assert fuzzy_score.score_entry("src/main.rs", "zzz", False) is None
    assert fuzzy_score.score_entry("a", "ab", False) is None


paths = st.text(alphabet="abcAB/_.-1 é", max_size=30)
needles = st.text(alphabet="abcAB/_1", min_size=1, max_size=5)


@given(paths, needles)
def test_indices_spell_the_needle_in_order(path: str, needle: str) -> None:
    scored = fuzzy_score.score_atom(path, fuzzy_score.normalize(needle))
    if scored is None:
        assert not fuzzy_score.is_subsequence(
            fuzzy_score.normalize(needle), fuzzy_score.normalize(path)
        )
        return
    score, indices = scored
    assert score >= fuzzy_score.SCORE_MATCH * len(needle) - 3 * len(path)
    assert indices == sorted(set(indices))
    assert "".join(fuzzy_score.normalize(path[i]) for i in indices) == fuzzy_score.normalize(needle)


@given(
    st.lists(st.text(alphabet="abcdAB/_.-1 x", max_size=40), min_size=1, max_size=8),
    needles,
)
def test_batch_scores_equal_the_reference(batch: list[str], needle: str) -> None:
    needle = fuzzy_score.normalize(needle)
    got = fuzzy_batch.score_ascii(batch, needle).tolist()
    want = []
    for path in batch:
        scored = fuzzy_score.score_atom(path, needle)
        want.append(scored[0] if scored else 0)
    assert got == want
