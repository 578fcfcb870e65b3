"""Keyset pagination shared by the list methods."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from appserver.wire.errors import RpcError

T = TypeVar("T")

DEFAULT_PAGE = 50
MAX_PAGE = 500


def page_size(limit: int | None) -> int:
    return DEFAULT_PAGE if limit is None or limit <= 0 else min(limit, MAX_PAGE)


def descending(direction: str | None, default: str) -> bool:
    return (direction or default) == "desc"


def paginate(
    rows: Sequence[T], key: Callable[[T], Any], cursor: str | None, limit: int | None, desc: bool
) -> tuple[list[T], str | None]:
    """Keyset pages over `rows` sorted by `key` (a tuple ending in a unique id)."""
    ordered = sorted(rows, key=key, reverse=desc)
    if cursor:
        start = next(
            (i for i, row in enumerate(ordered) if _after(key(row), cursor, desc)), len(ordered)
        )
        ordered = ordered[start:]
    size = page_size(limit)
    page, rest = ordered[:size], ordered[size:]
    return page, (_cursor_of(key(page[-1])) if rest and page else None)


def _cursor_of(key: tuple[Any, ...]) -> str:
    return "|".join(str(part) for part in key)


def _after(key: tuple[Any, ...], cursor: str, desc: bool) -> bool:
    parts = cursor.split("|")
    try:
        mark = tuple(type(k)(p) for k, p in zip(key, parts, strict=True))
    except (ValueError, TypeError):
        raise RpcError.invalid_request(f"invalid cursor: {cursor}") from None
    return key < mark if desc else key > mark
