"""The wire layer: JSON-RPC messages without `"jsonrpc"`, request ids, the converter, errors.

Import the submodules themselves (`appserver.wire.messages`, `.ids`, `.converter`, `.errors`):
this package imports nothing, so a light user of `ids` or `limits` (the `attach` relay) does not
pay for cattrs and the message classes.
"""
