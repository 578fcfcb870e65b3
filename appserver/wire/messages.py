"""The four JSON-RPC message shapes, without the `"jsonrpc"` member, and their codec.

Decoding follows Codex's `#[serde(untagged)] enum JSONRPCMessage`: Request, Notification,
Response, Error are tried in that order; unknown members (including `"jsonrpc"`) are ignored;
a message that fits none of them, or is not JSON, is reported as `Undecodable` and gets no reply.
"""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
import orjson

from appserver.wire.converter import unstructure
from appserver.wire.ids import RequestId, is_request_id


@attrs.frozen(slots=True)
class Request:
    id: RequestId
    method: str
    params: Any = None


@attrs.frozen(slots=True)
class Notification:
    method: str
    params: Any = None


@attrs.frozen(slots=True)
class Response:
    id: RequestId
    result: Any


@attrs.frozen(slots=True)
class ErrorObject:
    code: int
    message: str
    data: Any = None


@attrs.frozen(slots=True)
class ErrorResponse:
    id: RequestId
    error: ErrorObject


Message = Request | Notification | Response | ErrorResponse


@attrs.frozen(slots=True)
class Undecodable:
    """Input that is dropped after logging; `reason` is what the log line says."""

    reason: str


_NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"


#: serde_json's recursion limit: deeper input is an error there.
MAX_DEPTH = 127


def decode(frame: bytes | bytearray | str) -> Message | Undecodable:
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        return Undecodable(str(exc))
    raw = frame.encode() if isinstance(frame, str) else frame
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        return Undecodable("recursion limit exceeded")
    if type(value) is dict and _has_duplicate_top_level_keys(raw, value):
        value = _without_duplicated_fields(raw)
    if b"-0" in raw:
        # serde_json reads `-0` as a float, which is no request id (rare: parse again).
        value = _with_negative_zero(raw)
    if type(value) is dict:
        message = _from_object(value)
    elif type(value) is list:
        message = _from_sequence(value)
    else:
        message = None
    return message if message is not None else Undecodable(_NO_VARIANT)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        if type(current) is dict:
            children: Any = current.values()
        elif type(current) is list:
            children = current
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


_MESSAGE_KEYS = (b'"id"', b'"method"', b'"params"', b'"result"', b'"error"', b'"trace"')


def _has_duplicate_top_level_keys(raw: bytes | bytearray, value: dict[str, Any]) -> bool:
    # Cheap filter first: a key can only be repeated if its text occurs twice.
    return any(raw.count(key) > 1 for key in _MESSAGE_KEYS)


class _Repeated:
    """A field serde refuses because it appears twice: it matches no type."""


_REPEATED: Any = _Repeated()


def _without_duplicated_fields(raw: bytes | bytearray) -> Any:
    """The top-level object with every repeated member replaced by a value no field accepts
    (serde fails a struct with a repeated field: a repeated `id` makes a request a
    notification, a repeated `method` matches nothing)."""
    pairs = json.loads(raw, object_pairs_hook=_Pairs)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    return {key: _REPEATED if counts[key] > 1 else _objects(item) for key, item in pairs}


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, told apart from a JSON array (`{}` is not `[]`)."""


def _objects(value: Any) -> Any:
    """Nested pair lists (from `object_pairs_hook`) back into dicts."""
    if isinstance(value, _Pairs):
        return {k: _objects(v) for k, v in value}
    if isinstance(value, list):
        return [_objects(v) for v in value]
    return value


def _with_negative_zero(raw: bytes | bytearray) -> Any:
    return json.loads(raw, parse_int=lambda s: -0.0 if s == "-0" else int(s))


def _is_trace(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is list:  # serde accepts a struct as the sequence of its fields
        return len(value) <= 2 and all(v is None or type(v) is str for v in value)
    if type(value) is not dict:
        return False
    fields = (value.get("traceparent"), value.get("tracestate"))
    return all(v is None or type(v) is str for v in fields)


def _error_object(value: Any) -> ErrorObject | None:
    if type(value) is list and len(value) == 3:  # `[code, data, message]`, declaration order
        value = {"code": value[0], "data": value[1], "message": value[2]}
    if type(value) is not dict:
        return None
    code, message = value.get("code"), value.get("message")
    if type(code) is not int or not is_request_id(code) or type(message) is not str:
        return None
    return ErrorObject(int(code), message, value.get("data"))


def _from_object(obj: dict[str, Any]) -> Message | None:
    method = obj.get("method")
    has_id = "id" in obj and is_request_id(obj["id"])
    if type(method) is str:
        if has_id and _is_trace(obj.get("trace")):
            return Request(obj["id"], method, obj.get("params"))
        return Notification(method, obj.get("params"))
    if not has_id:
        return None
    if "result" in obj:
        return Response(obj["id"], obj["result"])
    error = _error_object(obj.get("error"))
    return ErrorResponse(obj["id"], error) if error is not None else None


def _from_sequence(seq: list[Any]) -> Message | None:
    # serde lets a struct be written as a sequence of its fields, in declaration order.
    n = len(seq)
    if (
        2 <= n <= 4
        and is_request_id(seq[0])
        and type(seq[1]) is str
        and (n < 4 or _is_trace(seq[3]))
    ):
        return Request(seq[0], seq[1], seq[2] if n > 2 else None)
    if 1 <= n <= 2 and type(seq[0]) is str:
        return Notification(seq[0], seq[1] if n > 1 else None)
    if n == 2 and is_request_id(seq[0]):
        return Response(seq[0], seq[1])
    if n == 2 and is_request_id(seq[1]):
        error = _error_object(seq[0])
        if error is not None:
            return ErrorResponse(seq[1], error)
    return None


def _error_dict(error: ErrorObject) -> dict[str, Any]:
    out: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        out["data"] = error.data
    return out


def to_wire(message: Message) -> dict[str, Any]:
    """The JSON object for an outgoing message (attrs values inside are left as they are; see
    `encode`). Notifications carry `emittedAtMs` like Codex."""
    if isinstance(message, Notification):
        out: dict[str, Any] = {"method": message.method}
        if message.params is not None:
            out["params"] = message.params
        out["emittedAtMs"] = time.time_ns() // 1_000_000
        return out
    if isinstance(message, Response):
        return {"id": message.id, "result": message.result}
    if isinstance(message, ErrorResponse):
        return {"error": _error_dict(message.error), "id": message.id}
    out = {"id": message.id, "method": message.method}
    if message.params is not None:
        out["params"] = message.params
    return out


def encode(message: Message) -> bytes:
    # orjson serializes dicts, lists and scalars itself and hands only what it does not know
    # (attrs instances) to the converter.
    return orjson.dumps(to_wire(message), default=unstructure)


class StreamFrames:
    """Frames of one notification stream whose params are fixed members plus one last string
    member that varies (a delta): each frame is the precomputed head, that string's JSON, and
    `emittedAtMs`, byte for byte what `encode(Notification(method, {**fixed, field: value}))`
    gives, without building a dict or a message per frame."""

    __slots__ = ("_head", "method")

    def __init__(self, method: str, fixed: dict[str, Any], field: str) -> None:
        self.method = method
        whole = orjson.dumps({"method": method, "params": {**fixed, field: ""}})
        self._head = whole[: -len(b'""}}')]

    def frame(self, value: str) -> bytes:
        return b'%s%s},"emittedAtMs":%d}' % (
            self._head,
            orjson.dumps(value),
            time.time_ns() // 1_000_000,
        )
