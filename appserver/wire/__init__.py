"""The wire layer: JSON-RPC messages without `"jsonrpc"`, request ids, the converter, errors."""

from appserver.wire.converter import converter, structure, unstructure
from appserver.wire.errors import RpcError
from appserver.wire.ids import RequestId, is_request_id
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
)

__all__ = [
    "ErrorObject",
    "ErrorResponse",
    "Message",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "RpcError",
    "Undecodable",
    "converter",
    "decode",
    "encode",
    "is_request_id",
    "structure",
    "unstructure",
]
