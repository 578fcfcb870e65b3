"""Fuzzy scores and match indices as Codex computes them for `fuzzyFileSearch`.

Codex ranks paths with nucleo (helix-editor/nucleo at 4253de9, `Config::DEFAULT.match_paths()`,
case ignored): a Smith-Waterman style alignment where every matched character is worth
`SCORE_MATCH`, gaps cost `PENALTY_GAP_START` then `PENALTY_GAP_EXTENSION` per character, and
characters after a `/`, at word starts, camelCase humps and digits earn bonuses (the first
query character's bonus counts double). This module is the reference implementation of that
score for one path (used for the indices of the results shown, and by the tests); the batch
scorer in `fuzzy_batch` computes the same numbers for many paths at once.

On top of nucleo's score, Codex 0.169 ranks by file name (observed on the real binary, not in
its published sources): when the whole query fuzzy-matches a file's own name, the file is
scored on its name alone (its indices point into the name) plus 65536; a file or directory
whose name equals the query (case ignored) gets another 2 * 65536. So for `main.rs`,
`src/main.rs` outranks `src/deep/mod_main.rs`, which outranks `main/rs.txt`.

A query is split on whitespace into atoms that must all match; their scores add up. nucleo's
fzf-style atom syntax (`^prefix`, `suffix$`, `'exact`, `!not`) is not interpreted: those
characters match literally.
"""

from __future__ import annotations

import unicodedata
from typing import Final

SCORE_MATCH: Final = 16
PENALTY_GAP_START: Final = 3
PENALTY_GAP_EXTENSION: Final = 1
BONUS_BOUNDARY: Final = SCORE_MATCH // 2
BONUS_CAMEL123: Final = BONUS_BOUNDARY - PENALTY_GAP_START
BONUS_NON_WORD: Final = BONUS_BOUNDARY
BONUS_CONSECUTIVE: Final = PENALTY_GAP_START + PENALTY_GAP_EXTENSION
BONUS_FIRST_CHAR_MULTIPLIER: Final = 2
# `Config::DEFAULT.match_paths()`: `/` is the delimiter, a path starts as if after one.
BONUS_BOUNDARY_WHITE: Final = BONUS_BOUNDARY
BONUS_BOUNDARY_DELIMITER: Final = BONUS_BOUNDARY + 1

NAME_MATCH_BONUS: Final = 1 << 16
NAME_EQUAL_BONUS: Final = 2 << 16

# Character classes, ordered as nucleo's `CharClass`.
WHITESPACE: Final = 0
NON_WORD: Final = 1
DELIMITER: Final = 2
LOWER: Final = 3
UPPER: Final = 4
LETTER: Final = 5
NUMBER: Final = 6
INITIAL_CLASS: Final = DELIMITER


def char_class(c: str) -> int:
    if c.isascii():
        if "a" <= c <= "z":
            return LOWER
        if "A" <= c <= "Z":
            return UPPER
        if "0" <= c <= "9":
            return NUMBER
        if c in " \t\n\r\x0b\x0c":
            return WHITESPACE
        return DELIMITER if c == "/" else NON_WORD
    if c.islower():
        return LOWER
    if c.isupper():
        return UPPER
    if c.isnumeric():
        return NUMBER
    if c.isalpha():
        return LETTER
    return WHITESPACE if c.isspace() else NON_WORD


def bonus_for(previous: int, current: int) -> int:
    if current > DELIMITER:
        if previous == WHITESPACE:
            return BONUS_BOUNDARY_WHITE
        if previous == DELIMITER:
            return BONUS_BOUNDARY_DELIMITER
        if previous == NON_WORD:
            return BONUS_BOUNDARY
    if (previous == LOWER and current == UPPER) or (previous != NUMBER and current == NUMBER):
        return BONUS_CAMEL123
    if current == WHITESPACE:
        return BONUS_BOUNDARY_WHITE
    if current == NON_WORD:
        return BONUS_NON_WORD
    return 0


def normalize_char(c: str) -> str:
    """Case folded, and a Latin letter with diacritics reduced to its base letter."""
    if c.isascii():
        return c.lower()
    base = unicodedata.normalize("NFD", c)[0]
    return (base if base.isascii() else c).lower()[:1] or c


def normalize(text: str) -> str:
    if text.isascii():
        return text.lower()
    return "".join(normalize_char(c) for c in text)


def bonuses(haystack: str) -> list[int]:
    previous = INITIAL_CLASS
    out = []
    for c in haystack:
        current = char_class(c)
        out.append(bonus_for(previous, current))
        previous = current
    return out


def atoms(query: str) -> list[str]:
    """The query's atoms, normalized (each must match)."""
    return [normalize(atom) for atom in query.split()]


def score_atom(haystack: str, needle: str) -> tuple[int, list[int]] | None:
    """nucleo's score of one normalized atom against a path, and the matched indices."""
    n, length = len(needle), len(haystack)
    if n == 0:
        return 0, []
    if n > length:
        return None
    folded = normalize(haystack)
    bonus = bonuses(haystack)
    if n == 1:
        return _single_char(folded, bonus, needle)
    # Feasibility as nucleo's prefilter and row offsets: the earliest place each needle
    # character can match after the previous one.
    row_start = []
    position = -1
    for c in needle:
        position = folded.find(c, position + 1)
        if position < 0:
            return None
        row_start.append(position)
    return _optimal(folded, bonus, needle, row_start)


def _single_char(folded: str, bonus: list[int], needle: str) -> tuple[int, list[int]] | None:
    best, best_at = 0, -1
    position = folded.find(needle)
    while position >= 0:
        score = bonus[position] * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
        if score > best:
            best, best_at = score, position
            if bonus[position] >= BONUS_BOUNDARY_WHITE:
                break
        position = folded.find(needle, position + 1)
    return (best, [best_at]) if best_at >= 0 else None


def _optimal(
    folded: str, bonus: list[int], needle: str, row_start: list[int]
) -> tuple[int, list[int]]:
    n, length = len(needle), len(folded)
    # m[j][k]: best score of needle[..=j] with needle[j] matched at k (0: impossible);
    # consecutive[j][k]: its consecutive bonus; diagonal[j][k]: needle[j-1] matched at k-1.
    # p[j][k]: best score of needle[..=j] matched before k, then a gap up to k;
    # from_match[j][k]: that gap starts at k-1 (needle[j] matched at k-1).
    m = [[0] * length for _ in range(n)]
    consecutive = [[0] * length for _ in range(n)]
    diagonal = [[False] * length for _ in range(n)]
    p = [[0] * length for _ in range(n)]
    from_match = [[False] * length for _ in range(n)]
    first = needle[0]
    for k in range(row_start[0], length):
        if folded[k] == first:
            m[0][k] = bonus[k] * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
            consecutive[0][k] = bonus[k]
    for j in range(n):
        mj, pj, fj = m[j], p[j], from_match[j]
        for k in range(row_start[j] + 1, length):
            by_match = mj[k - 1] - PENALTY_GAP_START
            by_skip = pj[k - 1] - PENALTY_GAP_EXTENSION
            if by_match > by_skip and by_match > 0:
                pj[k], fj[k] = by_match, True
            else:
                pj[k] = by_skip if by_skip > 0 else 0
        if j + 1 == n:
            break
        c = needle[j + 1]
        mn, cn, dn = m[j + 1], consecutive[j + 1], diagonal[j + 1]
        cj = consecutive[j]
        for k in range(row_start[j + 1], length):
            if folded[k] != c:
                continue
            b = bonus[k]
            previous = mj[k - 1]
            if previous == 0:
                mn[k], cn[k] = pj[k - 1] + b + SCORE_MATCH, b
                continue
            run_bonus = max(cj[k - 1], BONUS_CONSECUTIVE)
            if b >= BONUS_BOUNDARY and b > run_bonus:
                run_bonus = b
            by_match = previous + max(run_bonus, b)
            by_skip = pj[k - 1] + b
            if by_match > by_skip:
                mn[k], cn[k], dn[k] = by_match + SCORE_MATCH, run_bonus, True
            else:
                mn[k], cn[k] = by_skip + SCORE_MATCH, b
    last = m[n - 1]
    best, end = 0, -1
    for k in range(row_start[n - 1], length):
        if last[k] and last[k] >= best:  # nucleo keeps the last of equal maxima
            best, end = last[k], k
    indices = [0] * n
    k = end
    for j in range(n - 1, -1, -1):
        indices[j] = k
        if j == 0:
            break
        if diagonal[j][k]:
            k -= 1
            continue
        k -= 1
        while k > 0 and not from_match[j - 1][k]:
            k -= 1
        k -= 1
    return best, indices


def score_path(path: str, query_atoms: list[str]) -> tuple[int, list[int]] | None:
    """The sum of every atom's score (None if one does not match) and the sorted indices."""
    total, indices = 0, set()
    for atom in query_atoms:
        scored = score_atom(path, atom)
        if scored is None:
            return None
        total += scored[0]
        indices.update(scored[1])
    return total, sorted(indices)


def is_subsequence(needle: str, text: str) -> bool:
    position = -1
    for c in needle:
        position = text.find(c, position + 1)
        if position < 0:
            return False
    return True


def score_entry(path: str, query: str, is_directory: bool) -> tuple[int, list[int]] | None:
    """Codex 0.169's score of one entry for `query`: by file name first, else by path."""
    whole = normalize(query)
    start = path.rfind("/") + 1
    name = path[start:]
    equal = NAME_EQUAL_BONUS if normalize(name) == whole else 0
    if not is_directory and whole:
        by_name = score_atom(name, whole)
        if by_name is not None:
            return by_name[0] + NAME_MATCH_BONUS + equal, [start + i for i in by_name[1]]
    by_path = score_path(path, atoms(query))
    if by_path is None:
        return None
    return by_path[0] + equal, by_path[1]
