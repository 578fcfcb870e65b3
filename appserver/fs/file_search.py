"""One fuzzy query over one or more `FileIndex`es, run in small steps so it can stream and be
cancelled between them.

Codex's file-name tiers decide the order of work (see `fuzzy_score`): a file whose own name
matches the whole query outranks every entry that only matches through its path, so those are
found first, with a regular expression over the names alone (one C-speed scan of short lines),
and scored, on their names, batch by batch with `fuzzy_batch`, best tier first. Only when they
are fewer than `limit` are the paths themselves scanned (every atom must be a subsequence of
the path) for the rest. As in nucleo, the best `limit` are chosen by score, then shorter path;
they are shown by score, then path, as Codex sorts them. Match indices are computed for the
results only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import attrs

from appserver.fs import fuzzy_batch, fuzzy_score
from appserver.fs.file_index import FileIndex

MATCH_LIMIT: Final = 50
BATCH: Final = 4096


def subsequence_pattern(needle: str) -> re.Pattern[str]:
    """Finds, in a newline-joined text, the lines that hold `needle` as a subsequence: the
    leftmost occurrence of each character after the previous one, then the rest of the line
    (so a line matches once, however often its characters repeat)."""
    parts = [re.escape(needle[0])]
    for c in needle[1:]:
        parts.append(f"[^{re.escape(c)}\\n]*{re.escape(c)}")
    parts.append("[^\\n]*")
    return re.compile("".join(parts))


def matching_lines(text: str, offsets: Any, pattern: re.Pattern[str]) -> Any:
    """Sorted line numbers (numpy int64) of the lines of `text` where `pattern` matches."""
    import numpy as np

    starts = np.fromiter((m.start() for m in pattern.finditer(text)), np.int64)
    return np.searchsorted(offsets, starts, side="right") - 1


@attrs.define(eq=False)
class _Batch:
    index_position: int
    entries: Any  # numpy int64 entry numbers
    tier: int
    #: Scored on the entry's name against the whole query (else on its path, atom by atom).
    by_name: bool


@attrs.define(eq=False)
class QueryRun:
    """`step()` until it returns True; `results()` is the best so far, at any point."""

    query: str
    indexes: Sequence[FileIndex]
    limit: int = MATCH_LIMIT
    _atoms: list[str] = attrs.field(init=False)
    _whole: str = attrs.field(init=False)
    _work: list[_Batch] = attrs.field(init=False, factory=list)
    _named: list[Any] = attrs.field(init=False, factory=list)
    _scored: list[tuple[int, str, int, int]] = attrs.field(init=False, factory=list)
    _stage: int = attrs.field(init=False, default=0)
    _indices: dict[tuple[int, int], list[int]] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._atoms = fuzzy_score.atoms(self.query)
        self._whole = fuzzy_score.normalize(self.query)

    @property
    def done(self) -> bool:
        return self._stage == 3

    def step(self) -> bool:
        """One bounded piece of work (a scan or a batch); True when the query is complete."""
        if self._stage == 0:
            self._stage = 1
            if self._atoms:
                self._plan_named()
        elif self._work:
            self._score(self._work.pop(0))
        elif self._stage == 1:
            self._stage = 2
            if len(self._scored) < self.limit:
                self._plan_paths()
        else:
            self._stage = 3
        return self.done

    def run(self) -> list[dict[str, Any]]:
        while not self.step():
            pass
        return self.results()

    # -- planning ------------------------------------------------------------------------------

    def _plan_named(self) -> None:
        """Files whose own name matches the whole query, and entries whose name equals it."""
        import numpy as np

        pattern = subsequence_pattern(self._whole)
        for position, index in enumerate(self.indexes):
            named = matching_lines(index.names_text, index.name_offsets, pattern)
            self._named.append(named)
            if named.size == 0:
                continue
            is_directory = np.asarray(index.is_directory, bool)[named]
            equal = np.fromiter(
                (index.names[i] == self._whole for i in named.tolist()), bool, named.size
            )
            self._add_work(position, named[~is_directory & equal], 3, by_name=True)
            self._add_work(position, named[is_directory & equal], 2, by_name=False)
            self._add_work(position, named[~is_directory & ~equal], 1, by_name=True)
        self._work.sort(key=lambda batch: -batch.tier)

    def _plan_paths(self) -> None:
        """Entries that match only through their path: tier 0."""
        import numpy as np

        # The longest atom first (the fewest lines match it), then the others over those lines.
        atoms = sorted(self._atoms, key=len, reverse=True)
        patterns = [subsequence_pattern(atom) for atom in atoms]
        for position, index in enumerate(self.indexes):
            entries = matching_lines(index.text, index.offsets, patterns[0])
            for pattern in patterns[1:]:
                if entries.size == 0:
                    break
                subset = [index.lines[i] for i in entries.tolist()]
                lengths = np.fromiter(map(len, subset), np.int64, len(subset)) + 1
                offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
                entries = entries[matching_lines("\n".join(subset) + "\n", offsets, pattern)]
            if entries.size == 0:
                continue
            named = self._named[position] if position < len(self._named) else None
            if named is not None and named.size:
                # already scored: files by name, directories only if their name was equal
                directory = np.asarray(self.indexes[position].is_directory, bool)[named]
                equal = np.fromiter(
                    (self.indexes[position].names[i] == self._whole for i in named.tolist()),
                    bool,
                    named.size,
                )
                done = named[~directory | equal]
                entries = np.setdiff1d(entries, done, assume_unique=True)
            self._add_work(position, entries, 0, by_name=False)

    def _add_work(self, position: int, entries: Any, tier: int, *, by_name: bool) -> None:
        import numpy as np

        if entries.size == 0:
            return
        paths = self.indexes[position].paths
        lengths = np.fromiter((len(paths[i]) for i in entries.tolist()), np.int64, entries.size)
        ordered = entries[np.argsort(lengths, kind="stable")]
        for start in range(0, ordered.size, BATCH):
            self._work.append(_Batch(position, ordered[start : start + BATCH], tier, by_name))

    # -- scoring -------------------------------------------------------------------------------

    def _score(self, batch: _Batch) -> None:
        import numpy as np

        index = self.indexes[batch.index_position]
        entries = batch.entries.tolist()
        paths = [index.paths[i] for i in entries]
        if batch.by_name:
            haystacks, needles = [index.file_names[i] for i in entries], [self._whole]
        else:
            haystacks, needles = paths, self._atoms
        totals = np.zeros(len(paths), np.int64)
        not_ascii = index.not_ascii
        slow = [row for row, i in enumerate(entries) if i in not_ascii] if not_ascii else []
        if all(needle.isascii() for needle in needles):
            if slow:
                rows = [row for row, i in enumerate(entries) if i not in not_ascii]
                fast = [haystacks[row] for row in rows]
            else:
                rows, fast = list(range(len(entries))), haystacks
            matched = np.ones(len(rows), bool)
            sums = np.zeros(len(rows), np.int64)
            for needle in needles:
                scores = fuzzy_batch.score_ascii(fast, needle)
                matched &= scores > 0
                sums += scores
            totals[rows] = np.where(matched, sums, 0)
        else:
            slow = list(range(len(entries)))
        for row in slow:
            scored = fuzzy_score.score_path(haystacks[row], needles)
            totals[row] = scored[0] if scored is not None else 0
        bonus = batch.tier << 16
        floor = self._scored[-1][0] if len(self._scored) >= self.limit else 0
        for row in np.flatnonzero((totals > 0) & (totals + bonus >= floor)).tolist():
            item = (int(totals[row]) + bonus, paths[row], batch.index_position, entries[row])
            self._scored.append(item)
        # nucleo keeps the best by score, then the shorter path
        self._scored.sort(key=lambda s: (-s[0], len(s[1]), s[1]))
        del self._scored[self.limit :]

    def results(self) -> list[dict[str, Any]]:
        out = []
        for score, path, position, entry in sorted(self._scored, key=lambda s: (-s[0], s[1])):
            index = self.indexes[position]
            indices = self._indices.get((position, entry))
            if indices is None:
                scored = fuzzy_score.score_entry(path, self.query, index.is_directory[entry])
                indices = self._indices[(position, entry)] = scored[1] if scored else []
            out.append(
                {
                    "root": index.root,
                    "path": path,
                    "match_type": "directory" if index.is_directory[entry] else "file",
                    "file_name": path.rsplit("/", 1)[-1],
                    "score": score,
                    "indices": indices,
                }
            )
        return out
