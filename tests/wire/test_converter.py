"""The package converter: wire names, strict JSON types, null handling, serde-style errors.

Params errors reach the client as `Invalid request: <message>`, where Codex's message is
serde's (codex-observed §2), so the messages are checked exactly.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.protocol.initialize import (
    ClientInfoParams,
    InitializeCapabilities,
    InitializeParams,
)
from appserver.registry import Method, ParamsError
from appserver.wire.converter import OPTIONAL, WIRE_NAME, camel, structure, unstructure
from appserver.wire.ids import I64_MAX, I64_MIN


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Switch(enum.Enum):
    ON = "on"
    OFF = "off"


class Only(enum.Enum):
    ONE = "one"


@attrs.frozen
class Child:
    some_value: int
    label: str | None = attrs.field(default=None, metadata=OPTIONAL)


@attrs.frozen
class Sample:
    thread_id: str
    max_items: int = 10
    ratio: float = 0.5
    enabled: bool = False
    nullable_note: str | None = None
    optional_note: str | None = attrs.field(default=None, metadata=OPTIONAL)
    renamed_flag: bool = attrs.field(default=False, metadata={WIRE_NAME: "is_renamed"})
    tags: list[str] = attrs.field(factory=list)
    scores: dict[str, float] = attrs.field(factory=dict)
    children: list[Child] = attrs.field(factory=list)
    child: Child | None = attrs.field(default=None, metadata=OPTIONAL)
    color: Color = Color.RED
    mode: Literal["fast", "slow", "auto"] = "auto"


@attrs.frozen
class Choices:
    switch: Switch = Switch.ON
    only: Only = Only.ONE
    side: Literal["left", "right"] = "left"
    single: Literal["just"] = "just"


def _ignore(ctx: Any, params: Any) -> None:
    return None


def params_error(params_type: type, raw: Any) -> str:
    """The serde-style message a method taking `params_type` answers `raw` with."""
    with pytest.raises(ParamsError) as info:
        Method("test/method", _ignore, params_type).decode_params(raw)
    return str(info.value)


def decode_params(params_type: type, raw: Any) -> Any:
    return Method("test/method", _ignore, params_type).decode_params(raw)


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("x", "x"),
        ("thread_id", "threadId"),
        ("opt_out_notification_methods", "optOutNotificationMethods"),
        ("experimental_api", "experimentalApi"),
        ("already", "already"),
    ],
)
def test_camel(name: str, wire: str) -> None:
    assert camel(name) == wire


def test_output_names_are_camel_case() -> None:
    out = unstructure(Sample("t", children=[Child(1)]))
    assert list(out) == [
        "threadId",
        "maxItems",
        "ratio",
        "enabled",
        "nullableNote",
        "is_renamed",
        "tags",
        "scores",
        "children",
        "color",
        "mode",
    ]
    assert out["children"] == [{"someValue": 1}]


def test_input_names_are_camel_case_only() -> None:
    got = decode_params(Sample, {"threadId": "t", "maxItems": 3, "max_items": 4})
    assert got == Sample("t", max_items=3)
    assert params_error(Sample, {"thread_id": "t"}) == "missing field `threadId`"


def test_metadata_overrides_the_wire_name() -> None:
    assert unstructure(Sample("t", renamed_flag=True))["is_renamed"] is True
    assert "renamedFlag" not in unstructure(Sample("t"))
    assert decode_params(Sample, {"threadId": "t", "is_renamed": True}).renamed_flag is True
    assert decode_params(Sample, {"threadId": "t", "renamedFlag": True}).renamed_flag is False


# -- strict JSON types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"threadId": 5}, "invalid type: integer `5`, expected a string"),
        ({"threadId": True}, "invalid type: boolean `true`, expected a string"),
        ({"threadId": 1.5}, "invalid type: floating point `1.5`, expected a string"),
        ({"threadId": []}, "invalid type: sequence, expected a string"),
        ({"threadId": {}}, "invalid type: map, expected a string"),
        ({"threadId": "t", "maxItems": True}, "invalid type: boolean `true`, expected i64"),
        ({"threadId": "t", "maxItems": False}, "invalid type: boolean `false`, expected i64"),
        ({"threadId": "t", "maxItems": "5"}, 'invalid type: string "5", expected i64'),
        ({"threadId": "t", "maxItems": 2.0}, "invalid type: floating point `2.0`, expected i64"),
        ({"threadId": "t", "enabled": 1}, "invalid type: integer `1`, expected a boolean"),
        ({"threadId": "t", "enabled": "true"}, 'invalid type: string "true", expected a boolean'),
        ({"threadId": "t", "ratio": "0.5"}, 'invalid type: string "0.5", expected f64'),
        ({"threadId": "t", "ratio": True}, "invalid type: boolean `true`, expected f64"),
        ({"threadId": "t", "tags": "x"}, 'invalid type: string "x", expected a sequence'),
        ({"threadId": "t", "tags": {}}, "invalid type: map, expected a sequence"),
        ({"threadId": "t", "tags": ["a", 1]}, "invalid type: integer `1`, expected a string"),
        ({"threadId": "t", "scores": []}, "invalid type: sequence, expected a map"),
        ({"threadId": "t", "scores": {"a": "x"}}, 'invalid type: string "x", expected f64'),
        (
            {"threadId": "t", "children": [{"someValue": "x"}]},
            'invalid type: string "x", expected i64',
        ),
        ({"threadId": "t", "child": []}, "invalid type: sequence, expected struct Child"),
        ({"threadId": "t", "child": 3}, "invalid type: integer `3`, expected struct Child"),
    ],
    ids=repr,
)
def test_strict_types(raw: dict[str, Any], message: str) -> None:
    assert params_error(Sample, raw) == message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        # serde's `Unexpected::Str` is written with Rust's `{:?}`: quotes, backslashes and
        # control characters are escaped.
        ('say "hi"', 'string "say \\"hi\\""'),
        ("back\\slash", 'string "back\\\\slash"'),
        ("two\nlines\t", 'string "two\\nlines\\t"'),
        ("ünï", 'string "ünï"'),
        # `Unexpected::Float` goes through serde's `WithDecimalPoint`: Rust's `{}` for f64 never
        # uses an exponent, and ".0" is added when there is no decimal point.
        (1e20, "floating point `100000000000000000000.0`"),
        (1e-7, "floating point `0.0000001`"),
        (-2.5, "floating point `-2.5`"),
        (18446744073709551615, "integer `18446744073709551615`"),
    ],
    ids=repr,
)
def test_unexpected_values_are_shown_like_serde(value: Any, shown: str) -> None:
    message = params_error(Sample, {"threadId": "t", "enabled": value})
    assert message == f"invalid type: {shown}, expected a boolean"


def test_params_must_be_an_object() -> None:
    assert params_error(Sample, []) == "invalid type: sequence, expected struct Sample"
    assert params_error(Sample, "x") == 'invalid type: string "x", expected struct Sample'
    assert params_error(Sample, 1) == "invalid type: integer `1`, expected struct Sample"


def test_a_float_field_accepts_an_integer() -> None:
    got = decode_params(Sample, {"threadId": "t", "ratio": 2, "scores": {"a": 1}})
    assert type(got.ratio) is float
    assert got.ratio == 2.0
    assert type(got.scores["a"]) is float


# -- missing fields and null ----------------------------------------------------------------


def test_initialize_without_client_info() -> None:
    assert params_error(InitializeParams, {}) == "missing field `clientInfo`"


def test_initialize_with_incomplete_client_info() -> None:
    message = params_error(InitializeParams, {"clientInfo": {"name": "p"}})
    assert message == "missing field `version`"


def test_missing_or_null_params() -> None:
    assert params_error(InitializeParams, None) == "missing field `params`"


def test_initialize_minimal_params() -> None:
    got = decode_params(InitializeParams, {"clientInfo": {"name": "p", "version": "1"}})
    assert got == InitializeParams(ClientInfoParams("p", "1"))


def test_initialize_full_params() -> None:
    raw = {
        "clientInfo": {"name": "probe", "title": None, "version": "0.0.1"},
        "capabilities": {"experimentalApi": True, "optOutNotificationMethods": ["a"]},
    }
    assert decode_params(InitializeParams, raw) == InitializeParams(
        ClientInfoParams("probe", "0.0.1"),
        InitializeCapabilities(experimental_api=True, opt_out_notification_methods=["a"]),
    )


def test_null_for_a_defaulted_field_is_the_default() -> None:
    raw = {
        "threadId": "t",
        "maxItems": None,
        "ratio": None,
        "enabled": None,
        "nullableNote": None,
        "optionalNote": None,
        "tags": None,
        "scores": None,
        "children": None,
        "child": None,
        "color": None,
        "mode": None,
        "is_renamed": None,
    }
    assert decode_params(Sample, raw) == Sample("t")
    got = decode_params(InitializeParams, {"clientInfo": {"name": "p", "version": "1"}})
    assert got.capabilities is None
    caps = decode_params(InitializeCapabilities, {"experimentalApi": None})
    assert caps == InitializeCapabilities()


def test_null_for_a_required_field_is_an_error() -> None:
    assert params_error(Sample, {"threadId": None}) == "invalid type: null, expected a string"
    message = params_error(InitializeParams, {"clientInfo": None})
    assert message == "invalid type: null, expected struct ClientInfoParams"
    message = params_error(Sample, {"threadId": "t", "children": [{"someValue": None}]})
    assert message == "invalid type: null, expected i64"


def test_null_inside_a_list_is_an_error() -> None:
    message = params_error(Sample, {"threadId": "t", "tags": ["a", None]})
    assert message == "invalid type: null, expected a string"


def test_unknown_keys_are_ignored() -> None:
    raw: dict[str, Any] = {"threadId": "t", "bogus": {"deep": [1]}, "jsonrpc": "2.0", "": None}
    assert decode_params(Sample, raw) == Sample("t")
    raw = {"clientInfo": {"name": "p", "version": "1", "extra": 1}, "other": None}
    assert decode_params(InitializeParams, raw) == InitializeParams(ClientInfoParams("p", "1"))


# -- output: omit-if-none versus null -------------------------------------------------------


def test_optional_none_is_omitted_and_nullable_none_is_null() -> None:
    out = unstructure(Sample("t"))
    assert "optionalNote" not in out
    assert "child" not in out
    assert "nullableNote" in out
    assert out["nullableNote"] is None
    assert orjson.dumps(unstructure(Child(1))) == b'{"someValue":1}'


def test_optional_values_are_written_when_set() -> None:
    out = unstructure(Sample("t", optional_note="", child=Child(2, label="l")))
    assert out["optionalNote"] == ""
    assert out["child"] == {"someValue": 2, "label": "l"}


def wire(value: Any) -> Any:
    """What the client receives: `unstructure` output is made for orjson (enums stay members)."""
    return orjson.loads(orjson.dumps(unstructure(value)))


def test_output_of_enums_literals_and_collections() -> None:
    out = wire(
        Sample(
            "t",
            tags=["a"],
            scores={"k": 1.5},
            children=[Child(1), Child(2, "x")],
            color=Color.BLUE,
            mode="fast",
        )
    )
    assert out["color"] == "blue"
    assert out["mode"] == "fast"
    assert out["tags"] == ["a"]
    assert out["scores"] == {"k": 1.5}
    assert out["children"] == [{"someValue": 1}, {"someValue": 2, "label": "x"}]


def test_initialize_capabilities_output() -> None:
    out = unstructure(InitializeCapabilities())
    assert out == {"experimentalApi": False, "requestAttestation": False}


# -- enums and literals ---------------------------------------------------------------------


def test_enum_and_literal_values() -> None:
    got = decode_params(Sample, {"threadId": "t", "color": "green", "mode": "slow"})
    assert got.color is Color.GREEN
    assert got.mode == "slow"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"color": "purple"},
            "unknown variant `purple`, expected one of `red`, `green`, `blue`",
        ),
        ({"color": "RED"}, "unknown variant `RED`, expected one of `red`, `green`, `blue`"),
        ({"mode": "warp"}, "unknown variant `warp`, expected one of `fast`, `slow`, `auto`"),
    ],
    ids=repr,
)
def test_unknown_variant_lists_the_variants(raw: dict[str, Any], message: str) -> None:
    assert params_error(Sample, {"threadId": "t", **raw}) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # serde's `OneOf`: "expected `a`", "expected `a` or `b`", "expected one of `a`, ...".
        ({"switch": "dim"}, "unknown variant `dim`, expected `on` or `off`"),
        ({"only": "two"}, "unknown variant `two`, expected `one`"),
        ({"side": "up"}, "unknown variant `up`, expected `left` or `right`"),
        ({"single": "other"}, "unknown variant `other`, expected `just`"),
    ],
    ids=repr,
)
def test_unknown_variant_of_one_or_two_variants_reads_like_serde(
    raw: dict[str, Any], message: str
) -> None:
    assert params_error(Choices, raw) == message


def test_enum_of_the_wrong_type() -> None:
    """serde's derived enums deserialize through `deserialize_enum`: a string or a map."""
    message = params_error(Sample, {"threadId": "t", "color": 5})
    assert message == "invalid type: integer `5`, expected string or map"


# -- nested structuring ---------------------------------------------------------------------


def test_nested_lists_and_dicts() -> None:
    raw = {
        "threadId": "t",
        "tags": ["a", "b", ""],
        "scores": {"x": 1.25, "y": 3},
        "children": [{"someValue": 1}, {"someValue": -2, "label": "l", "extra": 0}],
        "child": {"someValue": 7, "label": None},
    }
    assert decode_params(Sample, raw) == Sample(
        "t",
        tags=["a", "b", ""],
        scores={"x": 1.25, "y": 3.0},
        children=[Child(1), Child(-2, "l")],
        child=Child(7),
    )


def test_nested_missing_field() -> None:
    message = params_error(Sample, {"threadId": "t", "children": [{"someValue": 1}, {}]})
    assert message == "missing field `someValue`"


# -- property: structure(unstructure(x)) == x, through JSON ----------------------------------

i64s = st.integers(min_value=I64_MIN, max_value=I64_MAX)
floats = st.floats(allow_nan=False, allow_infinity=False)
children = st.builds(Child, some_value=i64s, label=st.one_of(st.none(), st.text(max_size=10)))
samples = st.builds(
    Sample,
    thread_id=st.text(max_size=20),
    max_items=i64s,
    ratio=floats,
    enabled=st.booleans(),
    nullable_note=st.one_of(st.none(), st.text(max_size=10)),
    optional_note=st.one_of(st.none(), st.text(max_size=10)),
    renamed_flag=st.booleans(),
    tags=st.lists(st.text(max_size=5), max_size=4),
    scores=st.dictionaries(st.text(max_size=5), floats, max_size=4),
    children=st.lists(children, max_size=3),
    child=st.one_of(st.none(), children),
    color=st.sampled_from(Color),
    mode=st.sampled_from(["fast", "slow", "auto"]),
)
choices = st.builds(
    Choices,
    switch=st.sampled_from(Switch),
    only=st.just(Only.ONE),
    side=st.sampled_from(["left", "right"]),
    single=st.just("just"),
)


@given(samples)
def test_sample_round_trip(value: Sample) -> None:
    assert structure(wire(value), Sample) == value


@given(children)
def test_child_round_trip_without_json(value: Child) -> None:
    assert structure(unstructure(value), Child) == value


@given(choices)
def test_choices_round_trip(value: Choices) -> None:
    assert structure(wire(value), Choices) == value


@given(
    st.builds(
        InitializeParams,
        client_info=st.builds(
            ClientInfoParams,
            name=st.text(max_size=10),
            version=st.text(max_size=10),
            title=st.one_of(st.none(), st.text(max_size=10)),
        ),
        capabilities=st.one_of(
            st.none(),
            st.builds(
                InitializeCapabilities,
                experimental_api=st.booleans(),
                request_attestation=st.booleans(),
                opt_out_notification_methods=st.one_of(
                    st.none(), st.lists(st.text(max_size=10), max_size=3)
                ),
            ),
        ),
    )
)
def test_initialize_params_round_trip(value: InitializeParams) -> None:
    assert decode_params(InitializeParams, wire(value)) == value
