"""The JSON-RPC codec: what each input decodes to, and what the encoder writes.

The expectations follow codex-observed §2 (the input table and the id rules) and
codex-source-spec §4.1: Codex's `#[serde(untagged)] enum JSONRPCMessage` tries Request,
Notification, Response, Error in that order, ignores unknown members (`"jsonrpc"` included),
and a message that fits none of them, or is not JSON, gets no reply (`Undecodable`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from appserver.wire.ids import I64_MAX, I64_MIN, is_request_id
from appserver.wire.messages import (
    ErrorObject,
    ErrorResponse,
    Message,
    Notification,
    Request,
    Response,
    Undecodable,
    decode,
    encode,
    to_wire,
)

NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"
U64_MAX = 2**64 - 1


class _NotJson:
    """Expected outcome for input that is not (one) JSON value: Undecodable, any reason."""


class _NoVariant:
    """Expected outcome for JSON that fits no variant: Undecodable with serde's message."""


NOT_JSON = _NotJson()
NO_MATCH = _NoVariant()
Expected = Message | _NotJson | _NoVariant


def strict_eq(a: Any, b: Any) -> bool:
    """Equality that also tells `1` from `True` and `1.0`, and `"1"` from `1`, at any depth."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_eq(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_eq(x, y) for x, y in zip(a, b, strict=True))
    if attrs.has(type(a)):
        return strict_eq(attrs.asdict(a), attrs.asdict(b))
    return bool(a == b)


def assert_decodes(frame: bytes | str, expected: Expected) -> None:
    got = decode(frame)
    if isinstance(expected, _NotJson):
        assert isinstance(got, Undecodable), got
        assert got.reason != NO_VARIANT, got
    elif isinstance(expected, _NoVariant):
        assert got == Undecodable(NO_VARIANT), got
    else:
        assert strict_eq(got, expected), f"{frame!r}: got {got!r}, expected {expected!r}"


# -- the §2 input table and id rules ---------------------------------------------------------

TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
INIT_PARAMS = {
    "clientInfo": {"name": "probe", "title": None, "version": "0.0.1"},
    "capabilities": {"experimentalApi": True, "optOutNotificationMethods": []},
}

ROWS: list[tuple[str, bytes, Expected]] = [
    # Requests: an id that is a string or an i64, and a string method.
    (
        "handshake",
        orjson.dumps({"method": "initialize", "id": 1, "params": INIT_PARAMS}),
        Request(1, "initialize", INIT_PARAMS),
    ),
    ("int id", b'{"id":1,"method":"x"}', Request(1, "x")),
    ("negative id", b'{"id":-7,"method":"x"}', Request(-7, "x")),
    ("i64 max id", b'{"id":9223372036854775807,"method":"x"}', Request(I64_MAX, "x")),
    ("i64 min id", b'{"id":-9223372036854775808,"method":"x"}', Request(I64_MIN, "x")),
    ("zero id", b'{"id":0,"method":"x"}', Request(0, "x")),
    ("empty string id", b'{"id":"","method":"x"}', Request("", "x")),
    ("string id", b'{"id":"1","method":"x"}', Request("1", "x")),
    (
        "unicode id",
        '{"id":"ünï 😀 \\u00e9","method":"x"}'.encode(),
        Request("ünï 😀 é", "x"),
    ),
    ("params null", b'{"id":1,"method":"x","params":null}', Request(1, "x")),
    ("params list", b'{"id":1,"method":"x","params":[1,"a"]}', Request(1, "x", [1, "a"])),
    ("params scalar", b'{"id":1,"method":"x","params":false}', Request(1, "x", False)),
    ("jsonrpc 2.0", b'{"jsonrpc":"2.0","id":1,"method":"x"}', Request(1, "x")),
    ("jsonrpc 1.0", b'{"jsonrpc":"1.0","id":1,"method":"x"}', Request(1, "x")),
    ("jsonrpc number", b'{"jsonrpc":2,"id":1,"method":"x"}', Request(1, "x")),
    ("jsonrpc object", b'{"jsonrpc":{"v":[]},"id":1,"method":"x"}', Request(1, "x")),
    ("jsonrpc null", b'{"jsonrpc":null,"id":1,"method":"x"}', Request(1, "x")),
    ("unknown members", b'{"id":1,"method":"x","extra":[1,{}],"X":null}', Request(1, "x")),
    ("trace", orjson.dumps({"id": 1, "method": "x", "trace": TRACE}), Request(1, "x")),
    (
        "trace with tracestate",
        b'{"id":1,"method":"x","trace":{"traceparent":"t","tracestate":"k=v"}}',
        Request(1, "x"),
    ),
    ("trace null", b'{"id":1,"method":"x","trace":null}', Request(1, "x")),
    ("trace empty", b'{"id":1,"method":"x","trace":{}}', Request(1, "x")),
    ("trace members null", b'{"id":1,"method":"x","trace":{"tracestate":null}}', Request(1, "x")),
    ("request wins over response", b'{"id":1,"method":"x","result":2}', Request(1, "x")),
    ("key order irrelevant", b'{"params":{},"method":"x","id":"a"}', Request("a", "x", {})),
    ("trailing whitespace", b' {"id":1,"method":"x"} \t\r\n', Request(1, "x")),
    # Notifications: a string method, no usable id (or a request that fails on `trace`).
    ("initialized", b'{"method":"initialized"}', Notification("initialized")),
    (
        "unknown notification",
        b'{"method":"nope/notify","params":{"a":1}}',
        Notification("nope/notify", {"a": 1}),
    ),
    ("notification params null", b'{"method":"x","params":null}', Notification("x")),
    ("null id", b'{"id":null,"method":"x"}', Notification("x")),
    ("float id", b'{"id":1.5,"method":"x"}', Notification("x")),
    ("integral float id", b'{"id":1.0,"method":"x"}', Notification("x")),
    ("exponent id", b'{"id":1e2,"method":"x"}', Notification("x")),
    ("bool id", b'{"id":true,"method":"x"}', Notification("x")),
    ("u64 max id", b'{"id":18446744073709551615,"method":"x"}', Notification("x")),
    ("i64 max + 1 id", b'{"id":9223372036854775808,"method":"x"}', Notification("x")),
    ("i64 min - 1 id", b'{"id":-9223372036854775809,"method":"x"}', Notification("x")),
    ("huge id", b'{"id":100000000000000000000000,"method":"x"}', Notification("x")),
    ("object id", b'{"id":{},"method":"x"}', Notification("x")),
    ("list id", b'{"id":[1],"method":"x"}', Notification("x")),
    ("bad trace type", b'{"id":1,"method":"x","trace":"t"}', Notification("x")),
    ("bad traceparent", b'{"id":1,"method":"x","trace":{"traceparent":5}}', Notification("x")),
    ("bad tracestate", b'{"id":1,"method":"x","trace":{"tracestate":[]}}', Notification("x")),
    # Responses: an id and a `result` member, whatever its value.
    ("response", b'{"id":99,"result":{}}', Response(99, {})),
    ("response null result", b'{"id":1,"result":null}', Response(1, None)),
    ("response string id", b'{"id":"r","result":[1,2]}', Response("r", [1, 2])),
    ("response non-string method", b'{"method":5,"id":1,"result":3}', Response(1, 3)),
    (
        "response wins over error",
        b'{"id":1,"result":0,"error":{"code":1,"message":"m"}}',
        Response(1, 0),
    ),
    # Errors: an id and a well-formed error object.
    (
        "error",
        b'{"id":98,"error":{"code":-32600,"message":"m"}}',
        ErrorResponse(98, ErrorObject(-32600, "m")),
    ),
    (
        "error id last",
        b'{"error":{"code":1,"message":"","data":{"k":[1]}},"id":"e"}',
        ErrorResponse("e", ErrorObject(1, "", {"k": [1]})),
    ),
    (
        "error data null",
        b'{"id":1,"error":{"code":1,"message":"m","data":null}}',
        ErrorResponse(1, ErrorObject(1, "m")),
    ),
    (
        "error code i64 min",
        b'{"id":1,"error":{"code":-9223372036854775808,"message":"m"}}',
        ErrorResponse(1, ErrorObject(I64_MIN, "m")),
    ),
    # Sequences: serde accepts a struct written as the list of its fields.
    ("[1,2] is a response", b"[1,2]", Response(1, 2)),
    ('[1,"x"] is a request', b'[1,"x"]', Request(1, "x")),
    ("request with params", b'[1,"x",{"a":1}]', Request(1, "x", {"a": 1})),
    ("request with trace", b'["r","x",null,{"traceparent":"t"}]', Request("r", "x")),
    ('["m"] is a notification', b'["m"]', Notification("m")),
    ("notification params", b'["m",{"a":1}]', Notification("m", {"a": 1})),
    (
        "error as a sequence",
        b'[{"code":1,"message":"m"},7]',
        ErrorResponse(7, ErrorObject(1, "m")),
    ),
    # No variant fits: no reply.
    ("number", b"42", NO_MATCH),
    ("string", b'"str"', NO_MATCH),
    ("null", b"null", NO_MATCH),
    ("true", b"true", NO_MATCH),
    ("float", b"1.5", NO_MATCH),
    ("empty list", b"[]", NO_MATCH),
    ("empty object", b"{}", NO_MATCH),
    ("id alone", b'{"id":24}', NO_MATCH),
    ("method not a string", b'{"method":5,"id":1}', NO_MATCH),
    ("method null", b'{"method":null,"id":1}', NO_MATCH),
    ("params alone", b'{"params":{}}', NO_MATCH),
    ("result without id", b'{"result":1}', NO_MATCH),
    ("result with null id", b'{"id":null,"result":1}', NO_MATCH),
    ("result with float id", b'{"id":1.5,"result":1}', NO_MATCH),
    ("result with u64 id", b'{"id":18446744073709551615,"result":1}', NO_MATCH),
    ("error without id", b'{"error":{"code":1,"message":"m"}}', NO_MATCH),
    ("error null", b'{"id":1,"error":null}', NO_MATCH),
    ("error not an object", b'{"id":1,"error":"boom"}', NO_MATCH),
    ("error without code", b'{"id":1,"error":{"message":"m"}}', NO_MATCH),
    ("error without message", b'{"id":1,"error":{"code":1}}', NO_MATCH),
    ("error float code", b'{"id":1,"error":{"code":1.0,"message":"m"}}', NO_MATCH),
    ("error bool code", b'{"id":1,"error":{"code":true,"message":"m"}}', NO_MATCH),
    (
        "error u64 code",
        b'{"id":1,"error":{"code":18446744073709551615,"message":"m"}}',
        NO_MATCH,
    ),
    ("error message not a string", b'{"id":1,"error":{"code":1,"message":2}}', NO_MATCH),
    ("[1]", b"[1]", NO_MATCH),
    ("[1.5,2]", b"[1.5,2]", NO_MATCH),
    ("request with bad trace", b'[1,"x",null,5]', NO_MATCH),
    ("sequence too long", b'[1,"x",null,null,null]', NO_MATCH),
    ("response too long", b"[1,2,3]", NO_MATCH),
    # Not JSON, or more than one JSON value: no reply either.
    ("malformed", b"{bad", NOT_JSON),
    ("empty line", b"", NOT_JSON),
    ("whitespace line", b" \t ", NOT_JSON),
    ("two objects", b'{"id":1,"method":"x"}{"id":2,"method":"y"}', NOT_JSON),
    ("two objects, space", b'{"method":"a"} {"method":"b"}', NOT_JSON),
    ("two objects, newline", b'{"method":"a"}\n{"method":"b"}', NOT_JSON),
    ("trailing comma", b'{"method":"a",}', NOT_JSON),
    ("invalid utf-8", b'{"method":"\xff"}', NOT_JSON),
    ("byte order mark", b'\xef\xbb\xbf{"method":"a"}', NOT_JSON),
    ("NaN", b'{"id":1,"method":"x","params":NaN}', NOT_JSON),
    ("lone surrogate escape", b'{"method":"\\ud800"}', NOT_JSON),
]


@pytest.mark.parametrize(("frame", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_decode_table(frame: bytes, expected: Expected) -> None:
    assert_decodes(frame, expected)


TEXT_ROWS = [r for r in ROWS if r[0] != "invalid utf-8"]


@pytest.mark.parametrize(
    ("frame", "expected"), [r[1:] for r in TEXT_ROWS], ids=[r[0] for r in TEXT_ROWS]
)
def test_decode_accepts_text_frames(frame: bytes, expected: Expected) -> None:
    """WebSocket text frames arrive as `str`; they decode exactly like the bytes."""
    assert_decodes(frame.decode(), expected)


def test_string_and_integer_ids_are_distinct() -> None:
    as_string = decode(b'{"id":"1","method":"x"}')
    as_integer = decode(b'{"id":1,"method":"x"}')
    assert isinstance(as_string, Request)
    assert isinstance(as_integer, Request)
    assert type(as_string.id) is str
    assert type(as_integer.id) is int
    assert as_string != as_integer
    assert len({as_string.id, as_integer.id}) == 2


@pytest.mark.parametrize(
    "request_id",
    [-7, 0, 1, I64_MAX, I64_MIN, "", "1", "ünï 😀", "a\u0000b", "\u2028"],
    ids=repr,
)
def test_request_ids_are_echoed_unchanged(request_id: int | str) -> None:
    request = decode(orjson.dumps({"id": request_id, "method": "x"}))
    assert isinstance(request, Request)
    assert strict_eq(request.id, request_id)
    reply = orjson.loads(encode(Response(request.id, None)))
    assert strict_eq(reply["id"], request_id)
    error = orjson.loads(encode(ErrorResponse(request.id, ErrorObject(-32600, "m"))))
    assert strict_eq(error["id"], request_id)


# -- serde_json parity beyond the §2 table ----------------------------------------------------
# Codex parses with `serde_json::from_str`; these are consequences of that parser and of serde's
# derived `Deserialize`, which the decoder claims to follow.


def test_negative_zero_id_is_not_an_integer() -> None:
    """serde_json reads `-0` as the float -0.0 (de.rs `parse_integer`), so it is no RequestId."""
    assert_decodes(b'{"id":-0,"method":"x"}', Notification("x"))
    assert_decodes(b"[-0,2]", NO_MATCH)


def test_duplicate_member_fails_the_struct_that_declares_it() -> None:
    """serde's derived visitors reject a repeated known field (`duplicate field \\`id\\``).

    `Request` fails on the second `id`; `Notification` ignores `id`, so it matches. A repeated
    `method` fails every variant.
    """
    assert_decodes(b'{"id":1,"id":2,"method":"x"}', Notification("x"))
    assert_decodes(b'{"method":"a","method":"b"}', NO_MATCH)


def test_empty_objects_survive_a_repeated_key_elsewhere() -> None:
    """Regression (issue 13, found by hypothesis): a nested object with a `method` key sends
    the decoder down its repeated-key path, which turned every `{}` into `[]`."""
    frame = b'{"id":1,"method":"x","params":{"a":{},"b":{"method":"m"},"c":[{}],"d":[]}}'
    params = {"a": {}, "b": {"method": "m"}, "c": [{}], "d": []}
    assert_decodes(frame, Request(1, "x", params))
    assert_decodes(b'{"id":1,"id":2,"method":"x","params":{}}', Notification("x", {}))


def test_nested_structs_may_be_sequences_too() -> None:
    """`trace` (W3cTraceContext: traceparent?, tracestate?) and `error` (code, data?, message)
    accept the sequence form exactly like the top-level message does."""
    assert_decodes(b'{"id":1,"method":"x","trace":[]}', Request(1, "x"))
    assert_decodes(b'{"id":1,"method":"x","trace":["00-ab",null]}', Request(1, "x"))
    assert_decodes(b'{"id":1,"method":"x","trace":[1]}', Notification("x"))
    assert_decodes(
        b'{"id":1,"error":[-32600,null,"m"]}', ErrorResponse(1, ErrorObject(-32600, "m"))
    )
    assert_decodes(b'{"id":1,"error":[-32600,"m"]}', NO_MATCH)


def test_nesting_beyond_serde_json_recursion_limit_is_undecodable() -> None:
    """serde_json allows 127 nested arrays/objects (`remaining_depth: 128`); deeper is an error."""

    def nested(levels: int) -> bytes:
        inner = levels - 1  # the message object itself is one level
        return b'{"id":1,"method":"x","params":' + b"[" * inner + b"]" * inner + b"}"

    assert isinstance(decode(nested(127)), Request)
    assert_decodes(nested(128), NOT_JSON)


# -- properties: decode never raises ----------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=I64_MIN, max_value=I64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=20,
)


def dumps(value: Any) -> bytes:
    """JSON text for any Python JSON value, integers of any size included (orjson stops at 64
    bits)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


def assert_is_outcome(result: object) -> None:
    assert isinstance(result, Request | Notification | Response | ErrorResponse | Undecodable)


@given(st.binary(max_size=200))
def test_decode_never_raises_on_bytes(frame: bytes) -> None:
    assert_is_outcome(decode(frame))


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=100))
def test_decode_never_raises_on_text(frame: str) -> None:
    assert_is_outcome(decode(frame))


@given(json_values)
def test_decode_never_raises_on_json_values(value: Any) -> None:
    assert_is_outcome(decode(dumps(value)))


@given(json_scalars)
def test_scalar_json_is_undecodable(value: Any) -> None:
    assert decode(dumps(value)) == Undecodable(NO_VARIANT)


# -- property: objects and sequences classified like an independent oracle --------------------


def _i64(value: Any) -> bool:
    return type(value) is int and I64_MIN <= value <= I64_MAX


def _request_id(value: Any) -> bool:
    return type(value) is str or _i64(value)


def _optional_string(value: Any) -> bool:
    return value is None or type(value) is str


def _trace(value: Any) -> bool:
    """serde: `Option<W3cTraceContext { traceparent: Option<String>, tracestate: ... }>`,
    both fields `#[serde(default)]`."""
    if value is None:
        return True
    if type(value) is dict:
        return _optional_string(value.get("traceparent")) and _optional_string(
            value.get("tracestate")
        )
    if type(value) is list:
        return len(value) <= 2 and all(_optional_string(v) for v in value)
    return False


def _error_object(value: Any) -> ErrorObject | None:
    """serde: `JSONRPCErrorError { code: i64, data: Option<Value> (default), message: String }`."""
    if type(value) is dict:
        if "code" not in value or "message" not in value:
            return None
        code, data, message = value["code"], value.get("data"), value["message"]
    elif type(value) is list and len(value) == 3:
        code, data, message = value
    else:
        return None
    if not _i64(code) or type(message) is not str:
        return None
    return ErrorObject(code, message, data)


def oracle(value: Any) -> Expected:
    """Codex's untagged enum: the first of Request, Notification, Response, Error that fits."""
    if type(value) is dict:
        has_id = "id" in value and _request_id(value["id"])
        method = value.get("method")
        if has_id and type(method) is str and _trace(value.get("trace")):
            return Request(value["id"], method, value.get("params"))
        if type(method) is str:
            return Notification(method, value.get("params"))
        if has_id and "result" in value:
            return Response(value["id"], value["result"])
        if has_id and "error" in value:
            error = _error_object(value["error"])
            if error is not None:
                return ErrorResponse(value["id"], error)
        return NO_MATCH
    if type(value) is list:
        n = len(value)
        is_request = 2 <= n <= 4 and _request_id(value[0]) and type(value[1]) is str
        if is_request and (n < 4 or _trace(value[3])):
            return Request(value[0], value[1], value[2] if n > 2 else None)
        if 1 <= n <= 2 and type(value[0]) is str:
            return Notification(value[0], value[1] if n > 1 else None)
        if n == 2 and _request_id(value[0]):
            return Response(value[0], value[1])
        if n == 2 and _request_id(value[1]):
            error = _error_object(value[0])
            if error is not None:
                return ErrorResponse(value[1], error)
        return NO_MATCH
    return NO_MATCH


# Values for the members that matter, biased towards the edges of each rule. Lists are left out
# where a nested struct is expected (`trace`, `error`): their sequence form has its own test.
big_integers = st.one_of(
    st.integers(min_value=I64_MAX + 1, max_value=U64_MAX),
    st.integers(max_value=I64_MIN - 1, min_value=-(2**70)),
    st.integers(min_value=U64_MAX + 1, max_value=2**70),
    st.sampled_from([I64_MAX, I64_MIN, I64_MAX + 1, I64_MIN - 1, U64_MAX, 0, -1]),
)
not_lists = st.one_of(json_scalars, st.dictionaries(st.text(max_size=5), json_scalars, max_size=3))
id_values: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=I64_MIN, max_value=I64_MAX),
    st.text(max_size=5),
    big_integers,
    st.sampled_from([None, True, False, 1.0, 1.5, -0.0, "", "1", [1], {}]),
)
trace_values = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "traceparent": st.one_of(st.none(), st.text(max_size=5), json_scalars),
            "tracestate": st.one_of(st.none(), st.text(max_size=5), json_scalars),
            "other": json_values,
        },
    ),
    json_scalars,
)
error_values = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "code": st.one_of(st.integers(I64_MIN, I64_MAX), big_integers, json_scalars),
            "message": st.one_of(st.text(max_size=5), json_scalars),
            "data": json_values,
        },
    ),
    json_scalars,
)
message_objects = st.builds(
    lambda extra, members: {**extra, **members},
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "id": id_values,
            "method": st.one_of(st.text(max_size=8), json_scalars),
            "params": json_values,
            "result": json_values,
            "error": error_values,
            "trace": trace_values,
            "jsonrpc": json_values,
        },
    ),
)
message_sequences = st.lists(
    st.one_of(id_values.filter(lambda v: not isinstance(v, list)), error_values, not_lists),
    max_size=5,
)


def as_parsed(value: Any) -> Any:
    """`value` as a JSON parser returns it: integers beyond [i64 min, u64 max] become floats
    (serde_json and orjson agree on this)."""
    if type(value) is int and not I64_MIN <= value <= U64_MAX:
        return float(value)
    if isinstance(value, dict):
        return {k: as_parsed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_parsed(v) for v in value]
    return value


@given(message_objects)
@example({"id": 1, "method": "x", "params": {"a": {}, "b": {"method": "m"}}})
@example({"method": "x", "params": [{}, {"id": {}}], "id": 2})
def test_objects_decode_as_the_oracle_says(value: dict[str, Any]) -> None:
    assert_decodes(dumps(value), oracle(as_parsed(value)))


@given(message_sequences)
def test_sequences_decode_as_the_oracle_says(value: list[Any]) -> None:
    assert_decodes(dumps(value), oracle(as_parsed(value)))


def test_oracle_agrees_with_the_table() -> None:
    """The oracle is itself checked against the hand-written rows it can express."""
    checked = 0
    for name, frame, expected in ROWS:
        if isinstance(expected, _NotJson):
            continue
        assert strict_eq(oracle(json.loads(frame)), expected), name
        checked += 1
    assert checked > 80


# -- encoding -------------------------------------------------------------------------------

request_ids = st.one_of(st.integers(min_value=I64_MIN, max_value=I64_MAX), st.text(max_size=20))
params_values = st.one_of(st.none(), json_values)
error_objects = st.builds(
    ErrorObject,
    code=st.integers(min_value=I64_MIN, max_value=I64_MAX),
    message=st.text(max_size=20),
    data=params_values,
)
messages = st.one_of(
    st.builds(Request, id=request_ids, method=st.text(max_size=20), params=params_values),
    st.builds(Notification, method=st.text(max_size=20), params=params_values),
    st.builds(Response, id=request_ids, result=params_values),
    st.builds(ErrorResponse, id=request_ids, error=error_objects),
)


@given(messages)
def test_encode_decode_round_trip(message: Message) -> None:
    assert strict_eq(decode(encode(message)), message)


@given(messages)
def test_encoded_messages_have_no_jsonrpc_member(message: Message) -> None:
    wire = orjson.loads(encode(message))
    assert isinstance(wire, dict)
    assert "jsonrpc" not in wire


@given(messages)
def test_encode_is_compact_json_of_to_wire(message: Message) -> None:
    data = encode(message)
    assert not data.endswith(b"\n")
    if not isinstance(message, Notification):  # emittedAtMs differs between two calls
        assert data == orjson.dumps(to_wire(message))


@given(st.text(max_size=20), params_values)
def test_notifications_carry_emitted_at_ms(method: str, params: Any) -> None:
    before = time.time_ns() // 1_000_000
    wire = orjson.loads(encode(Notification(method, params)))
    after = time.time_ns() // 1_000_000
    assert type(wire["emittedAtMs"]) is int
    assert before <= wire["emittedAtMs"] <= after
    if params is None:
        assert list(wire) == ["method", "emittedAtMs"]
    else:
        assert list(wire) == ["method", "params", "emittedAtMs"]
        assert strict_eq(wire["params"], params)
    assert wire["method"] == method


def test_notification_wire_shape() -> None:
    wire = to_wire(Notification("configWarning", {"summary": "s", "details": None}))
    assert list(wire) == ["method", "params", "emittedAtMs"]
    assert wire["params"] == {"summary": "s", "details": None}
    assert list(to_wire(Notification("initialized"))) == ["method", "emittedAtMs"]


@given(request_ids, st.integers(min_value=I64_MIN, max_value=I64_MAX), st.text(max_size=20))
def test_error_replies_put_id_last_and_omit_missing_data(
    request_id: int | str, code: int, message: str
) -> None:
    data = encode(ErrorResponse(request_id, ErrorObject(code, message)))
    wire = orjson.loads(data)
    assert list(wire) == ["error", "id"]
    assert list(wire["error"]) == ["code", "message"]
    assert strict_eq(wire, {"error": {"code": code, "message": message}, "id": request_id})


@pytest.mark.parametrize("data", [0, False, "", [], {}, {"k": None}], ids=repr)
def test_error_replies_keep_falsy_data(data: Any) -> None:
    wire = orjson.loads(encode(ErrorResponse(1, ErrorObject(-32603, "m", data))))
    assert list(wire["error"]) == ["code", "message", "data"]
    assert strict_eq(wire["error"]["data"], data)


def test_error_reply_bytes_match_codex() -> None:
    reply = ErrorResponse(1, ErrorObject(-32600, "Not initialized"))
    assert encode(reply) == b'{"error":{"code":-32600,"message":"Not initialized"},"id":1}'


def test_response_bytes_match_codex() -> None:
    assert encode(Response(7, {"a": None})) == b'{"id":7,"result":{"a":null}}'
    assert encode(Response("x", None)) == b'{"id":"x","result":null}'


def test_request_wire_shape() -> None:
    assert to_wire(Request(3, "item/tool/call", {"a": 1})) == {
        "id": 3,
        "method": "item/tool/call",
        "params": {"a": 1},
    }
    assert to_wire(Request("s", "currentTime/read")) == {"id": "s", "method": "currentTime/read"}


def test_non_ascii_is_written_as_raw_utf8() -> None:
    data = encode(Response(1, {"text": "é😀"}))
    assert "é😀".encode() in data
    assert b"\\u" not in data


def test_is_request_id_rules() -> None:
    for good in [0, -7, I64_MAX, I64_MIN, "", "1", "ü"]:
        assert is_request_id(good), good
    bad_ids: list[Any] = [None, True, False, 1.0, 1.5, I64_MAX + 1, I64_MIN - 1, U64_MAX, [], {}]
    for bad in bad_ids:
        assert not is_request_id(bad), bad
