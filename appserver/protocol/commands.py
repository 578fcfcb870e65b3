"""Typed v2 params for `command/exec*` and `thread/backgroundTerminals/*` (Codex 0.169 schema).
Sandbox policies, env maps and sizes stay JSON objects; the handler checks them."""

from __future__ import annotations

import attrs

from appserver.protocol.v2 import JsonObject


@attrs.frozen
class CommandExecParams:
    command: list[str]
    process_id: str | None = None
    tty: bool | None = None
    stream_stdin: bool | None = None
    stream_stdout_stderr: bool | None = None
    output_bytes_cap: int | None = None
    disable_output_cap: bool | None = None
    disable_timeout: bool | None = None
    timeout_ms: int | None = None
    cwd: str | None = None
    env: JsonObject | None = None
    size: JsonObject | None = None
    sandbox_policy: JsonObject | None = None
    permission_profile: str | None = None


@attrs.frozen
class CommandExecWriteParams:
    process_id: str
    delta_base64: str | None = None
    close_stdin: bool | None = None


@attrs.frozen
class CommandExecResizeParams:
    process_id: str
    size: JsonObject


@attrs.frozen
class CommandExecTerminateParams:
    process_id: str


@attrs.frozen
class ThreadBackgroundTerminalsCleanParams:
    thread_id: str


@attrs.frozen
class ThreadBackgroundTerminalsTerminateParams:
    thread_id: str
    process_id: str
