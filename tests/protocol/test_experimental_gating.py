"""Codex gates an experimental `Option` field when present and a plain `bool` only when `true`:
`false` and `null` pass for a client without `experimentalApi`."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.protocol import v2
from appserver.protocol.experimental import GATED_WHEN_TRUE, experimental_field_in_use
from appserver.wire.converter import EXPERIMENTAL, structure, wire_name

#: Codex's plain-bool experimental params fields (non-nullable `boolean` in the 0.169 schema).
PLAIN_BOOLS = {
    (v2.ThreadStartParams, "allowProviderModelFallback"),
    (v2.ThreadStartParams, "experimentalRawEvents"),
    (v2.ThreadForkParams, "attachToSource"),
    (v2.ThreadForkParams, "deferGoalContinuation"),
    (v2.ThreadForkParams, "experimentalDisablePredictionMcp"),
    (v2.ThreadForkParams, "experimentalPredictionMode"),
    (v2.ThreadListParams, "includeAttachedThreads"),
}
REQUIRED = {
    v2.ThreadStartParams: {},
    v2.ThreadForkParams: {"threadId": "t"},
    v2.ThreadListParams: {},
}


def test_the_plain_bool_fields_are_the_marked_ones() -> None:
    marked = {
        (cls, wire_name(field))
        for cls in REQUIRED
        for field in attrs.fields(cls)
        if field.metadata.get(GATED_WHEN_TRUE)
    }
    assert marked == PLAIN_BOOLS


@pytest.mark.parametrize(("cls", "field"), sorted(PLAIN_BOOLS, key=str))
def test_a_plain_bool_is_gated_only_when_true(cls: type, field: str) -> None:
    method = "m"
    base = REQUIRED[cls]
    assert experimental_field_in_use(method, structure({**base, field: False}, cls)) is None
    assert experimental_field_in_use(method, structure({**base, field: None}, cls)) is None
    assert experimental_field_in_use(method, structure({**base, field: True}, cls)) == (
        f"m.{field}"
    )


@given(value=st.one_of(st.booleans(), st.integers(), st.text(), st.just([]), st.just({})))
def test_an_option_field_is_gated_whenever_present(value: object) -> None:
    params = structure({"historyMode": value}, v2.ThreadStartParams)
    assert experimental_field_in_use("thread/start", params) == "thread/start.historyMode"
    assert (
        experimental_field_in_use(
            "thread/start", structure({"historyMode": None}, v2.ThreadStartParams)
        )
        is None
    )


def test_every_marked_field_is_experimental() -> None:
    for cls in REQUIRED:
        for field in attrs.fields(cls):
            if field.metadata.get(GATED_WHEN_TRUE):
                assert field.metadata.get(EXPERIMENTAL)
