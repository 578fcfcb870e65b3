"""How much item text one notification may carry: the rule that keeps a client that reads
everything from being cut as slow for the server's own message sizes.

- `item/agentMessage/delta` (and any streamed delta) longer than `MAX_ITEM_TEXT_BYTES` is sent
  as several deltas of at most that size;
- in `item/started`, `item/completed` and `turn/completed`, every `text` and `aggregatedOutput`
  string longer than `MAX_ITEM_TEXT_BYTES` is cut to that size (at a character boundary) and
  ends with `TRUNCATED_MARKER`; `turn/completed` carries at most `MAX_TURN_TEXT_BYTES` of such
  text in all, past that each is only the marker.

The store keeps the full items: `thread/read`, `thread/turns/list` and `thread/items/list`
return them whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import attrs

from appserver.protocol.v2 import Turn

MAX_ITEM_TEXT_BYTES: Final = 1024 * 1024
MAX_TURN_TEXT_BYTES: Final = 4 * MAX_ITEM_TEXT_BYTES
TEXT_KEYS: Final = frozenset({"text", "aggregatedOutput"})
TRUNCATED_MARKER: Final = (
    "\n[appserver: {omitted} more bytes not sent in this notification; thread/read returns the "
    "full text]"
)


def _cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, without splitting a character."""
    return text.encode()[:limit].decode(errors="ignore")


class _Budget:
    def __init__(self, total: int | None) -> None:
        self.left = total

    def cap(self, text: str) -> str:
        size = len(text.encode())
        limit = MAX_ITEM_TEXT_BYTES if self.left is None else min(MAX_ITEM_TEXT_BYTES, self.left)
        if size <= limit:
            kept = text
        else:
            head = _cut(text, limit)
            kept = head + TRUNCATED_MARKER.format(omitted=size - len(head.encode()))
        if self.left is not None:
            self.left = max(0, self.left - min(size, limit))
        return kept

    def walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: self.cap(item)
                if key in TEXT_KEYS and isinstance(item, str)
                else self.walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.walk(item) for item in value]
        return value


def capped_item(item: dict[str, Any]) -> dict[str, Any]:
    """The item as one notification may carry it (a copy when anything was cut)."""
    if not _oversized(item):
        return item
    capped: dict[str, Any] = _Budget(None).walk(item)
    return capped


def capped_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A turn's items as `turn/completed` may carry them."""
    if not any(_oversized(item) for item in items) and _text_size(items) <= MAX_TURN_TEXT_BYTES:
        return items
    budget = _Budget(MAX_TURN_TEXT_BYTES)
    return [budget.walk(item) for item in items]


def delta_pieces(text: str) -> Iterator[str]:
    """`text` in pieces of at most `MAX_ITEM_TEXT_BYTES` UTF-8 bytes (one piece if it fits)."""
    if len(text) * 4 <= MAX_ITEM_TEXT_BYTES or len(text.encode()) <= MAX_ITEM_TEXT_BYTES:
        yield text
        return
    while text:
        piece = _cut(text, MAX_ITEM_TEXT_BYTES)
        yield piece
        text = text[len(piece) :]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TEXT_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _oversized(value: Any) -> bool:
    # A str of n characters has at most 4n UTF-8 bytes: most strings need no encoding.
    return any(
        len(s) * 4 > MAX_ITEM_TEXT_BYTES and len(s.encode()) > MAX_ITEM_TEXT_BYTES
        for s in _strings(value)
    )


def _text_size(value: Any) -> int:
    return sum(len(s.encode()) for s in _strings(value))


def capped_turn(turn: Turn) -> Turn:
    """A `Turn` as `turn/completed` may carry it."""
    items = capped_items(turn.items)
    return turn if items is turn.items else attrs.evolve(turn, items=items)
