"""`StreamFrames` gives the same bytes as encoding the whole notification."""

from __future__ import annotations

from typing import Any
from unittest import mock

import orjson
from hypothesis import given
from hypothesis import strategies as st

from appserver.wire import messages
from appserver.wire.messages import Notification, StreamFrames, encode

ids = st.text(max_size=40)


@given(thread=ids, turn=ids, item=ids, value=st.text())
def test_a_frame_is_the_encoded_notification(thread: str, turn: str, item: str, value: str) -> None:
    fixed: dict[str, Any] = {"threadId": thread, "turnId": turn, "itemId": item}
    frames = StreamFrames("item/agentMessage/delta", fixed, "delta")
    with mock.patch.object(messages.time, "time_ns", return_value=1_795_000_000_123_456_789):
        frame = frames.frame(value)
        whole = encode(Notification("item/agentMessage/delta", {**fixed, "delta": value}))
    assert frame == whole
    assert orjson.loads(frame)["params"]["delta"] == value
    assert orjson.loads(frame)["emittedAtMs"] == 1_795_000_000_123


def test_no_fixed_members() -> None:
    frame = StreamFrames("x/delta", {}, "delta").frame("a")
    assert list(orjson.loads(frame)) == ["method", "params", "emittedAtMs"]
    assert orjson.loads(frame)["params"] == {"delta": "a"}
