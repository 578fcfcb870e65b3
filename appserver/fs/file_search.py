"""One fuzzy query over one or more `FileIndex`es, run in small steps so it can stream and be
cancelled between them.

Codex's file-name tiers decide the order of work (see `fuzzy_score`): a file whose own name
matches the whole query outranks every entry that only matches through its path, so those are
found first, with a regular expression over the names alone (a C-speed scan of short lines),
and scored, on their names, batch by batch with `fuzzy_batch`, best tier first. Only when they
are fewer than `limit` are the paths themselves scanned (every atom must be a subsequence of
the path) for the rest. Each scan goes `chunk` lines a step, and until something has scored,
the candidates a chunk yields are scored at once (one batch), so the first results do not wait
for a scan of the whole tree; the rest are scored once the stage's scan is complete, shortest
first, `batch` at a time. As in nucleo, the best `limit` are chosen by score, then shorter
path; they are shown by score, then path, as Codex sorts them. Which entries are scored does
not depend on the order of the work, so the final results do not depend on `chunk` or `batch`.
Match indices are computed for the results only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import attrs

from appserver.fs import fuzzy_batch, fuzzy_score
from appserver.fs.file_index import FileIndex

MATCH_LIMIT: Final = 50
BATCH: Final = 4096
#: Lines of an index scanned in one step (~1-50 ms on a quiet machine, by query).
CHUNK: Final = 16384
#: The size of the batch scored as soon as a chunk yields candidates, while nothing has scored.
FIRST_BATCH: Final = 256


def subsequence_pattern(needle: str) -> re.Pattern[str]:
    """Finds, in a newline-joined text, the lines that hold `needle` as a subsequence: the
    leftmost occurrence of each character after the previous one, then the rest of the line
    (so a line matches once, however often its characters repeat)."""
    parts = [re.escape(needle[0])]
    for c in needle[1:]:
        parts.append(f"[^{re.escape(c)}\\n]*{re.escape(c)}")
    parts.append("[^\\n]*")
    return re.compile("".join(parts))


def matching_lines(
    text: str, offsets: Any, pattern: re.Pattern[str], start: int = 0, stop: int | None = None
) -> Any:
    """Sorted line numbers (numpy int64) of the lines `start` to `stop` (default: the last)
    of `text` where `pattern` matches."""
    import numpy as np

    lines = len(offsets) if text else 0
    stop = lines if stop is None else min(stop, lines)
    if start >= stop:
        return np.zeros(0, np.int64)
    end = int(offsets[stop]) if stop < lines else len(text)
    found = pattern.finditer(text, int(offsets[start]), end)
    starts = np.fromiter((m.start() for m in found), np.int64)
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
    chunk: int = CHUNK
    batch: int = BATCH
    first_batch: int = FIRST_BATCH
    _atoms: list[str] = attrs.field(init=False)
    _whole: str = attrs.field(init=False)
    _steps: Iterator[None] = attrs.field(init=False)
    _done: bool = attrs.field(init=False, default=False)
    #: Per index: the entries the name stage scored for good (not to be scored by path).
    _by_name: list[list[Any]] = attrs.field(init=False)
    _scored: list[tuple[int, str, int, int]] = attrs.field(init=False, factory=list)
    _indices: dict[tuple[int, int], list[int]] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._atoms = fuzzy_score.atoms(self.query)
        self._whole = fuzzy_score.normalize(self.query)
        self._by_name = [[] for _ in self.indexes]
        self._steps = self._work()

    @property
    def done(self) -> bool:
        return self._done

    @property
    def has_results(self) -> bool:
        return bool(self._scored)

    def step(self) -> bool:
        """One bounded piece of work (a chunk's scan or a batch); True when the query is
        complete."""
        if not self._done:
            try:
                next(self._steps)
            except StopIteration:
                self._done = True
        return self._done

    def run(self) -> list[dict[str, Any]]:
        while not self.step():
            pass
        return self.results()

    def _work(self) -> Iterator[None]:
        if not self._atoms:
            return
        subsequence = subsequence_pattern(self._whole)
        yield from self._stage(lambda *where: self._scan_names(subsequence, *where))
        if len(self._scored) < self.limit:
            # The longest atom first (the fewest lines match it), then the others over those.
            atoms = sorted(self._atoms, key=len, reverse=True)
            patterns = [subsequence_pattern(atom) for atom in atoms]
            yield from self._stage(lambda *where: self._scan_paths(patterns, *where))

    def _stage(self, scan: Callable[[int, int, int], list[_Batch]]) -> Iterator[None]:
        pending: list[_Batch] = []
        for position, index in enumerate(self.indexes):
            for start in range(0, len(index), self.chunk):
                found = [b for b in scan(position, start, start + self.chunk) if b.entries.size]
                yield
                if found and not self._scored:
                    first, *rest = self._batches(found, self.first_batch)
                    self._score(first)
                    found = rest
                    yield
                pending.extend(found)
        for batch in self._batches(pending):
            self._score(batch)
            yield

    def _batches(self, found: list[_Batch], size: int | None = None) -> list[_Batch]:
        """`found` regrouped by index and tier, best tier first, each group's shortest entries
        first (a batch is as wide as its longest), `size` (default `batch`) entries at most."""
        import numpy as np

        groups: dict[tuple[int, int, bool], list[Any]] = {}
        for part in found:
            key = (part.index_position, part.tier, part.by_name)
            groups.setdefault(key, []).append(part.entries)
        size = size or self.batch
        out = []
        for (position, tier, by_name), parts in sorted(groups.items(), key=lambda g: -g[0][1]):
            index = self.indexes[position]
            entries = np.concatenate(parts)
            lengths = (index.name_lengths if by_name else index.lengths)[entries]
            ordered = entries[np.argsort(lengths, kind="stable")]
            for start in range(0, ordered.size, size):
                out.append(_Batch(position, ordered[start : start + size], tier, by_name))
        return out

    # -- scanning ------------------------------------------------------------------------------

    def _scan_names(
        self, subsequence: re.Pattern[str], position: int, start: int, stop: int
    ) -> list[_Batch]:
        """Files whose own name matches the whole query, and entries whose name equals it."""

        index = self.indexes[position]
        named = matching_lines(index.names_text, index.name_offsets, subsequence, start, stop)
        if named.size == 0:
            return []
        # a name that holds the query as a subsequence and is as long is the query
        is_equal = index.name_lengths[named] == len(self._whole)
        is_directory = index.directory_mask[named]
        # Directories whose name only matches are left to the path stage.
        self._by_name[position].append(named[~is_directory | is_equal])
        return [
            _Batch(position, named[~is_directory & is_equal], 3, by_name=True),
            _Batch(position, named[is_directory & is_equal], 2, by_name=False),
            _Batch(position, named[~is_directory & ~is_equal], 1, by_name=True),
        ]

    def _scan_paths(
        self, patterns: list[re.Pattern[str]], position: int, start: int, stop: int
    ) -> list[_Batch]:
        """Entries that match only through their path: tier 0."""
        import numpy as np

        index = self.indexes[position]
        entries = matching_lines(index.text, index.offsets, patterns[0], start, stop)
        for pattern in patterns[1:]:
            if entries.size == 0:
                return []
            subset = [index.lines[i] for i in entries.tolist()]
            offsets = np.concatenate(([0], np.cumsum(index.lengths[entries] + 1)[:-1]))
            entries = entries[matching_lines("\n".join(subset) + "\n", offsets, pattern)]
        done = self._by_name[position]
        if entries.size and done:
            entries = entries[~np.isin(entries, np.concatenate(done))]
        return [_Batch(position, entries, 0, by_name=False)]

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
        # nucleo keeps the best by score, then the shorter path (then, so that the order of the
        # work does not matter, the path and the root)
        self._scored.sort(key=lambda s: (-s[0], len(s[1]), s[1], s[2]))
        del self._scored[self.limit :]

    def results(self) -> list[dict[str, Any]]:
        out = []
        for score, path, position, entry in sorted(self._scored, key=lambda s: (-s[0], s[1], s[2])):
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
