"""The message processor: per-connection session, the initialize gate, dispatch.

Every decoded message from a connection comes through `handle_frame`, called by that
connection's reader. Order of checks for a request, exactly as Codex: unknown method or bad params
(`-32600 Invalid request: …`), then `initialize` itself, then `Not initialized`, then the
experimental gate, then dispatch. Inline handlers answer before the next frame is read; task
handlers are admitted by the ingress bound or answered `-32001`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import trio

from appserver.connection import ClientInfo, Connection, WriteReceipt
from appserver.ingress import Ingress
from appserver.metrics import METRICS
from appserver.protocol.experimental import experimental_field_in_use, requires_capability_message
from appserver.protocol.initialize import (
    DEFAULT_ORIGINATOR,
    NON_ORIGINATING_CLIENT_NAMES,
    InitializeParams,
    InitializeResponse,
    is_valid_header_value,
    originator_override,
    platform_family,
    platform_os,
    user_agent,
)
from appserver.registry import Method, ParamsError, Registry
from appserver.router import Router
from appserver.server_requests import Reply, ServerRequests
from appserver.wire import errors
from appserver.wire.ids import RequestId
from appserver.wire.messages import (
    ErrorObject,
    ErrorResponse,
    Message,
    Notification,
    Request,
    Response,
    Undecodable,
    decode,
)

log = logging.getLogger(__name__)

INITIALIZE: Final = "initialize"


@attrs.frozen
class ServerInfo:
    home: str
    version: str
    #: `configWarning` params sent to each connection right after its initialize reply.
    config_warnings: tuple[Any, ...] = ()


@attrs.frozen
class RequestContext:
    """What a handler may use: its connection's session and the outbound side."""

    connection: Connection
    request_id: RequestId
    processor: Processor
    _after_reply: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)

    def after_reply(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once the reply is queued (e.g. `thread/started` after thread/start)."""
        self._after_reply.append(action)

    @property
    def connection_id(self) -> int:
        return self.connection.id

    @property
    def experimental_api(self) -> bool:
        return self.connection.session.experimental_api

    async def notify(self, method: str, params: Any = None, *, wait_written: bool = False) -> bool:
        """A notification to this connection only; with `wait_written`, until it is written."""
        receipt = WriteReceipt() if wait_written else None
        await self.processor.router.send(self.connection.id, Notification(method, params), receipt)
        return await receipt.wait() if receipt is not None else True

    async def broadcast(self, method: str, params: Any = None) -> None:
        await self.processor.router.broadcast(Notification(method, params))

    async def request_client(self, method: str, params: Any, thread_id: str | None = None) -> Reply:
        return await self.processor.server_requests.request(
            [self.connection.id], method, params, thread_id=thread_id
        )


class Processor:
    def __init__(
        self,
        registry: Registry,
        router: Router,
        server_requests: ServerRequests,
        info: ServerInfo,
        ingress: Ingress | None = None,
    ) -> None:
        self.registry = registry
        self.router = router
        self.server_requests = server_requests
        self.info = info
        self.ingress = ingress or Ingress()
        self._originator: str | None = None
        #: Called with the id of every connection that goes away (the application's cleanup).
        self.closed_hooks: list[Callable[[int], None]] = []
        if INITIALIZE not in registry:
            registry.add(Method(INITIALIZE, _initialize_placeholder, InitializeParams))

    # -- connection lifecycle ----------------------------------------------------------------

    def connection_opened(self, connection: Connection) -> None:
        self.router.attach(connection)
        METRICS.connections_opened[connection.origin.value] += 1

    def connection_input_closed(self, connection: Connection) -> None:
        """The client can no longer reply: its pending server requests fail or wait for a resume."""
        self.server_requests.connection_closed(connection.id)

    def connection_closed(self, connection: Connection) -> None:
        self.router.detach(connection.id)
        self.server_requests.connection_closed(connection.id)
        for hook in self.closed_hooks:
            hook(connection.id)

    # -- input -------------------------------------------------------------------------------

    async def handle_frame(self, connection: Connection, frame: bytes | bytearray | str) -> None:
        message = decode(frame)
        del frame  # a big message's raw bytes are not kept while it is handled
        if isinstance(message, Undecodable):
            log.warning(
                "Failed to deserialize JSONRPCMessage on connection %s: %s",
                connection.id,
                message.reason,
            )
            return
        try:
            await self.handle_message(connection, message)
        except (trio.Cancelled, trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except Exception:
            # A bug handling one message must not end the connection or the server.
            log.exception("failed to handle a message on connection %s", connection.id)

    async def handle_message(self, connection: Connection, message: Message) -> None:
        if isinstance(message, Request):
            await self._on_request(connection, message)
        elif isinstance(message, Response | ErrorResponse):
            self.server_requests.resolve(connection.id, message)
        else:
            log.debug("<- notification from connection %s: %s", connection.id, message.method)

    async def _reply_error(
        self, connection: Connection, request_id: RequestId, code: int, text: str, data: Any = None
    ) -> None:
        error = ErrorResponse(request_id, ErrorObject(code, text, data))
        await self.router.send(connection.id, error)

    async def _on_request(self, connection: Connection, request: Request) -> None:
        method = self.registry.get(request.method)
        if method is None:
            text = self.registry.unknown_variant_message(request.method)
            await self._reply_error(connection, request.id, errors.INVALID_REQUEST, text)
            return
        try:
            params = method.decode_params(request.params)
        except ParamsError as exc:
            text = f"Invalid request: {exc}"
            await self._reply_error(connection, request.id, errors.INVALID_REQUEST, text)
            return
        session = connection.session
        if method.name == INITIALIZE:
            await self._initialize(connection, request.id, params)
            return
        if not session.initialized:
            text = errors.NOT_INITIALIZED_MESSAGE
            await self._reply_error(connection, request.id, errors.INVALID_REQUEST, text)
            return
        if not session.experimental_api:
            reason = method.name if method.experimental else None
            reason = reason or experimental_field_in_use(method.name, params)
            if reason is not None:
                text = requires_capability_message(reason)
                await self._reply_error(connection, request.id, errors.INVALID_REQUEST, text)
                return
        context = RequestContext(connection, request.id, self)
        if method.inline:
            await self._answer(context, method, params)
            return
        tasks = connection.tasks
        if tasks is None or not self.ingress.try_admit(connection.id):
            text = errors.OVERLOADED_MESSAGE
            METRICS.overloaded_replies += 1
            await self._reply_error(connection, request.id, errors.OVERLOADED, text)
            return
        tasks.start_soon(self._run_admitted, context, method, params)

    async def _run_admitted(self, context: RequestContext, method: Method, params: Any) -> None:
        try:
            await self._answer(context, method, params)
        finally:
            self.ingress.release(context.connection.id)

    async def _answer(self, context: RequestContext, method: Method, params: Any) -> None:
        request_id = context.request_id
        started = time.perf_counter()
        try:
            result = method.handler(context, params)
            if not method.inline:
                result = await result
        except errors.RpcError as exc:
            reply: Message = ErrorResponse(request_id, ErrorObject(exc.code, exc.message, exc.data))
        except trio.Cancelled:
            raise
        except Exception as exc:
            log.exception("handler for %s failed", method.name)
            text = str(exc) or type(exc).__name__
            reply = ErrorResponse(request_id, ErrorObject(errors.INTERNAL_ERROR, text))
        else:
            reply = Response(request_id, {} if result is None else result)
        await self.router.send(context.connection.id, reply)
        METRICS.observe_request(method.name, time.perf_counter() - started)
        if isinstance(reply, Response):
            for action in context._after_reply:
                await action()

    # -- initialize --------------------------------------------------------------------------

    async def _initialize(
        self, connection: Connection, request_id: RequestId, params: InitializeParams
    ) -> None:
        session = connection.session
        if session.initialized:
            text = errors.ALREADY_INITIALIZED_MESSAGE
            await self._reply_error(connection, request_id, errors.INVALID_REQUEST, text)
            return
        client = params.client_info
        if not is_valid_header_value(client.name):
            text = f"Invalid clientInfo.name: '{client.name}'. Must be a valid HTTP header value."
            await self._reply_error(connection, request_id, errors.INVALID_REQUEST, text)
            return
        capabilities = params.capabilities
        session.initialized = True
        connection.cancel_scope.deadline = math.inf  # the initialize deadline no longer applies
        session.client_info = ClientInfo(client.name, client.version, client.title)
        if capabilities is not None:
            session.experimental_api = capabilities.experimental_api
            session.opt_out_notification_methods = frozenset(
                capabilities.opt_out_notification_methods or ()
            )
        if self._originator is None and client.name not in NON_ORIGINATING_CLIENT_NAMES:
            self._originator = client.name
        originator = originator_override() or self._originator or DEFAULT_ORIGINATOR
        result = InitializeResponse(
            user_agent=user_agent(originator, params.client_info, self.info.version),
            codex_home=self.info.home,
            platform_family=platform_family(),
            platform_os=platform_os(),
        )
        await self.router.send(connection.id, Response(request_id, result))
        for warning in self.info.config_warnings:
            await self.router.send(connection.id, Notification("configWarning", warning))
        connection.ready = True
        log.info(
            "connection %s initialized by %s %s (experimentalApi=%s)",
            connection.id,
            client.name,
            client.version,
            session.experimental_api,
        )


def _initialize_placeholder(context: RequestContext, params: InitializeParams) -> None:
    raise AssertionError("initialize is handled by the processor itself")
