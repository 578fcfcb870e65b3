"""The rule for how much item text one notification carries (issue 13 item 5)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.app.notified_text import (
    MAX_ITEM_TEXT_BYTES,
    MAX_TURN_TEXT_BYTES,
    TRUNCATED_MARKER,
    capped_item,
    capped_items,
    delta_pieces,
)

MARKER_HEAD = TRUNCATED_MARKER.split("{", 1)[0]


def message(text: str) -> dict[str, Any]:
    return {"type": "agentMessage", "id": "m", "text": text, "phase": "final_answer"}


def test_small_items_are_sent_as_they_are() -> None:
    item = message("hello")
    assert capped_item(item) is item
    items = [item, {"type": "userMessage", "content": [{"type": "text", "text": "hi"}]}]
    assert capped_items(items) is items


def test_a_long_text_is_cut_with_a_marker_saying_how_much_was_left_out() -> None:
    text = "é" * MAX_ITEM_TEXT_BYTES  # 2 bytes each
    capped = capped_item(message(text))["text"]
    head, marker = capped.split(MARKER_HEAD)
    assert len(head.encode()) <= MAX_ITEM_TEXT_BYTES
    assert text.startswith(head)
    omitted = len(text.encode()) - len(head.encode())
    assert MARKER_HEAD + marker == TRUNCATED_MARKER.format(omitted=omitted)


def test_nested_input_text_and_command_output_are_capped_too() -> None:
    big = "x" * (MAX_ITEM_TEXT_BYTES + 10)
    user = {"type": "userMessage", "content": [{"type": "text", "text": big}]}
    command = {"type": "commandExecution", "aggregatedOutput": big, "command": big}
    assert MARKER_HEAD in capped_item(user)["content"][0]["text"]
    capped = capped_item(command)
    assert MARKER_HEAD in capped["aggregatedOutput"]
    assert capped["command"] == big  # only text and output fields are capped
    assert user["content"][0]["text"] == big  # the original is untouched


def test_turn_completed_carries_a_bounded_total() -> None:
    items = [message("y" * (MAX_ITEM_TEXT_BYTES - 1)) for _ in range(10)]
    capped = capped_items(items)
    total = sum(len(item["text"].encode()) for item in capped)
    assert total <= MAX_TURN_TEXT_BYTES + 10 * len(TRUNCATED_MARKER) + 100
    assert capped[0]["text"] == items[0]["text"]
    assert capped[-1]["text"].startswith(MARKER_HEAD)


@settings(deadline=None, max_examples=50)  # megabyte strings: time depends on the machine's load
@given(st.text(alphabet=st.sampled_from("aé€😀"), max_size=200), st.integers(0, 2))
def test_delta_pieces_rejoin_to_the_text_and_respect_the_limit(text: str, scale: int) -> None:
    repeated = text * (1 + scale * (MAX_ITEM_TEXT_BYTES // max(1, len(text.encode()))))
    pieces = list(delta_pieces(repeated))
    assert "".join(pieces) == repeated
    assert all(len(p.encode()) <= MAX_ITEM_TEXT_BYTES for p in pieces)
    assert all(pieces) or pieces == [""]
