"""JSON-RPC error codes as Codex uses them, and the exception handlers raise."""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
OVERLOADED = -32001

OVERLOADED_MESSAGE = "Server overloaded; retry later."
NOT_INITIALIZED_MESSAGE = "Not initialized"
ALREADY_INITIALIZED_MESSAGE = "Already initialized"


class RpcError(Exception):
    """Raised by a handler to answer its request with `{"error": {...}}`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def invalid_request(cls, message: str, data: Any = None) -> RpcError:
        return cls(INVALID_REQUEST, message, data)

    @classmethod
    def internal(cls, message: str, data: Any = None) -> RpcError:
        return cls(INTERNAL_ERROR, message, data)
