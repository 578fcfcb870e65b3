"""`command/exec` (+ `/write`, `/resize`, `/terminate`) and `thread/backgroundTerminals/*`.

`command/exec` runs one argv outside any thread, through the process runner (so under its
`sandboxPolicy`, by default the server's: `readOnly`), as Codex's app-server does: in `cwd`
(relative to the server's cwd, which is also the default), with `env` merged into the server's
environment, for at most `timeoutMs` (default 10 s; exit code 124 when it expires) unless
`disableTimeout`, capturing at most `outputBytesCap` bytes per stream (default 1 MiB) unless
`disableOutputCap`. The reply waits for the process to exit and comes after every
`command/exec/outputDelta` (base64 chunks, to the requesting connection only). Streaming, stdin
and `tty` need a client-chosen `processId`, unique among that connection's running commands;
follow-up calls name it. A connection that goes away takes its commands with it (their request
tasks are cancelled, which kills their process groups).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from typing import Any, Final

import attrs
import trio

from appserver import process
from appserver.app.handlers.pagination import paginate
from appserver.app.terminals import TERMINALS
from appserver.app.threads import Threads
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.protocol.commands import (
    CommandExecParams,
    CommandExecResizeParams,
    CommandExecTerminateParams,
    CommandExecWriteParams,
    ThreadBackgroundTerminalsCleanParams,
    ThreadBackgroundTerminalsTerminateParams,
)
from appserver.registry import Registry
from appserver.wire.errors import INVALID_PARAMS, RpcError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS: Final = 10_000
DEFAULT_OUTPUT_BYTES_CAP: Final = 1024 * 1024
#: The policy of a `command/exec` that names none (Codex: the user's configured one).
DEFAULT_SANDBOX_POLICY: Final = {"type": "readOnly", "networkAccess": False}


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


@attrs.define(eq=False)
class _Session:
    stream_stdin: bool = False
    process: process.Process | None = None
    #: Set once the process started (or failed to): follow-up calls wait for it.
    started: trio.Event = attrs.Factory(trio.Event)


def _size(wire: Any) -> tuple[int, int]:
    """(rows, cols) from a `CommandExecTerminalSize`."""
    if not isinstance(wire, dict):
        raise RpcError.invalid_request("Invalid request: invalid type: expected struct")
    rows, cols = wire.get("rows"), wire.get("cols")
    if (
        not isinstance(rows, int)
        or not isinstance(cols, int)
        or not (0 <= rows < 65536 and 0 <= cols < 65536)
    ):
        raise RpcError.invalid_request("Invalid request: size needs rows and cols (u16)")
    if rows == 0 or cols == 0:
        raise invalid_params("command/exec size rows and cols must be greater than 0")
    return rows, cols


def _env(wire: Any) -> dict[str, str | None]:
    if wire is None:
        return {}
    if not all(isinstance(v, str | None) for v in wire.values()):
        raise RpcError.invalid_request("Invalid request: env values must be strings or null")
    return dict(wire)


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method
    #: (connection id, client processId) → its running command.
    sessions: dict[tuple[int, str], _Session] = {}

    def validate(params: CommandExecParams) -> None:
        if params.sandbox_policy is not None and params.permission_profile is not None:
            raise RpcError.invalid_request(
                "`permissionProfile` cannot be combined with `sandboxPolicy`"
            )
        if params.size is not None and not params.tty:
            raise invalid_params("command/exec size requires tty: true")
        if params.disable_output_cap and params.output_bytes_cap is not None:
            raise invalid_params("command/exec cannot set both outputBytesCap and disableOutputCap")
        if params.disable_timeout and params.timeout_ms is not None:
            raise invalid_params("command/exec cannot set both timeoutMs and disableTimeout")
        if params.timeout_ms is not None and params.timeout_ms < 0:
            raise invalid_params(
                f"command/exec timeoutMs must be non-negative, got {params.timeout_ms}"
            )

    @method("command/exec", CommandExecParams)
    async def command_exec(ctx: RequestContext, params: CommandExecParams) -> dict[str, Any]:
        validate(params)
        size = _size(params.size) if params.size is not None else None
        tty = bool(params.tty)
        stream_stdin = tty or bool(params.stream_stdin)
        streaming = tty or bool(params.stream_stdout_stderr)
        if params.process_id is None and (stream_stdin or streaming):
            raise RpcError.invalid_request(
                "command/exec tty or streaming requires a client-supplied processId"
            )
        if not params.command:
            raise RpcError.invalid_request("command must not be empty")
        key = (ctx.connection_id, params.process_id) if params.process_id is not None else None
        if key is not None and key in sessions:
            raise RpcError.invalid_request(
                f'duplicate active command/exec process id: "{params.process_id}"'
            )
        policy = params.sandbox_policy or DEFAULT_SANDBOX_POLICY
        try:
            process.parse_policy(policy)
        except process.PolicyError as exc:
            raise RpcError.invalid_request(f"invalid sandbox policy: {exc}") from None
        timeout = None if params.disable_timeout else (params.timeout_ms or DEFAULT_TIMEOUT_MS)
        spec = process.Spec(
            argv=params.command,
            cwd=os.path.join(os.getcwd(), params.cwd or ""),
            sandbox=policy,
            env=_env(params.env),
            tty=tty,
            size=size,
            stdin=stream_stdin,
            timeout=None if timeout is None else timeout / 1000,
            output_cap=None
            if params.disable_output_cap
            else (
                params.output_bytes_cap
                if params.output_bytes_cap is not None
                else DEFAULT_OUTPUT_BYTES_CAP
            ),
            capture=not streaming,
        )

        async def delta(stream: str, data: bytes, cap_reached: bool) -> None:
            await ctx.notify(
                "command/exec/outputDelta",
                {
                    "processId": params.process_id,
                    "stream": stream,
                    "deltaBase64": base64.b64encode(data).decode("ascii"),
                    "capReached": cap_reached,
                },
            )

        session = _Session(stream_stdin=stream_stdin)
        if key is not None:
            sessions[key] = session
        try:
            async with process.spawn(spec, on_output=delta if streaming else None) as running:
                session.process = running
                session.started.set()
                result = await running.wait()
        except process.SandboxUnavailable as exc:
            raise RpcError.internal(f"exec failed: {exc}") from None
        except OSError as exc:
            raise RpcError.internal(f"failed to spawn command: {exc}") from None
        finally:
            session.started.set()
            if key is not None:
                sessions.pop(key, None)
        return {
            "exitCode": result.exit_code,
            "stdout": result.stdout.decode(errors="replace"),
            "stderr": result.stderr.decode(errors="replace"),
        }

    async def running(ctx: RequestContext, process_id: str) -> tuple[_Session, process.Process]:
        session = sessions.get((ctx.connection_id, process_id))
        if session is None:
            raise RpcError.invalid_request(f'no active command/exec for process id "{process_id}"')
        await session.started.wait()
        if session.process is None or not session.process.running:
            raise RpcError.invalid_request(f'command/exec "{process_id}" is no longer running')
        return session, session.process

    @method("command/exec/write", CommandExecWriteParams)
    async def command_exec_write(
        ctx: RequestContext, params: CommandExecWriteParams
    ) -> dict[str, Any]:
        if params.delta_base64 is None and not params.close_stdin:
            raise invalid_params("command/exec/write requires deltaBase64 or closeStdin")
        try:
            data = base64.b64decode(params.delta_base64 or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid_params(f"invalid deltaBase64: {exc}") from None
        session, target = await running(ctx, params.process_id)
        if not session.stream_stdin:
            raise RpcError.invalid_request("stdin streaming is not enabled for this command/exec")
        try:
            if data:
                await target.write(data)
            if params.close_stdin:
                await target.close_stdin()
        except process.StdinClosed:
            raise RpcError.invalid_request("stdin is already closed") from None
        return {}

    @method("command/exec/resize", CommandExecResizeParams)
    async def command_exec_resize(
        ctx: RequestContext, params: CommandExecResizeParams
    ) -> dict[str, Any]:
        rows, cols = _size(params.size)
        _, target = await running(ctx, params.process_id)
        try:
            target.resize(rows, cols)
        except (ValueError, OSError) as exc:
            raise RpcError.invalid_request(f"failed to resize PTY: {exc}") from None
        return {}

    @method("command/exec/terminate", CommandExecTerminateParams)
    async def command_exec_terminate(
        ctx: RequestContext, params: CommandExecTerminateParams
    ) -> dict[str, Any]:
        _, target = await running(ctx, params.process_id)
        target.terminate()
        return {}

    # -- background terminals ----------------------------------------------------------------

    @method(
        "thread/backgroundTerminals/list",
        v2.ThreadBackgroundTerminalsListParams,
        experimental=True,
    )
    async def thread_background_terminals_list(
        ctx: RequestContext, params: v2.ThreadBackgroundTerminalsListParams
    ) -> dict[str, Any]:
        await threads.find(params.thread_id)
        page, next_cursor = paginate(
            TERMINALS.list(params.thread_id),
            lambda t: (t.process_id,),
            params.cursor,
            params.limit,
            desc=False,
        )
        return {"data": [t.to_wire() for t in page], "nextCursor": next_cursor}

    @method(
        "thread/backgroundTerminals/clean",
        ThreadBackgroundTerminalsCleanParams,
        experimental=True,
    )
    async def thread_background_terminals_clean(
        ctx: RequestContext, params: ThreadBackgroundTerminalsCleanParams
    ) -> dict[str, Any]:
        await threads.find(params.thread_id)
        stopped = TERMINALS.clean(params.thread_id)
        if stopped:
            log.info("stopped %d process(es) of thread %s", stopped, params.thread_id)
        return {}

    @method(
        "thread/backgroundTerminals/terminate",
        ThreadBackgroundTerminalsTerminateParams,
        experimental=True,
    )
    async def thread_background_terminals_terminate(
        ctx: RequestContext, params: ThreadBackgroundTerminalsTerminateParams
    ) -> dict[str, Any]:
        await threads.find(params.thread_id)
        return {"terminated": TERMINALS.terminate(params.thread_id, params.process_id)}
