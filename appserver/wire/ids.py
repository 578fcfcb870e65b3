"""Request ids: a string or an integer in the i64 range, echoed unchanged."""

from __future__ import annotations

from typing import Any, TypeGuard

RequestId = int | str

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


def is_request_id(value: Any) -> TypeGuard[RequestId]:
    """Codex's untagged `RequestId`: str, or an integer (never a bool or float) within i64."""
    if type(value) is str:
        return True
    return type(value) is int and I64_MIN <= value <= I64_MAX
