"""The server: startup order, listeners, connection nurseries, signals.

Startup (spec §4), for every transport: take the home's startup lock; for unix://, prepare the
socket path (the singleton rule); open and migrate `state.sqlite`; bind; release the lock. Then
serve. stdio serves one client and exits when its input ends. Socket listeners run their accept
loops in one nursery and the connections in another (hypercorn's shape): on SIGTERM/SIGINT/SIGHUP
the accept nursery is cancelled first, the socket file is removed, then every connection is
disconnected; a second SIGTERM/SIGINT forces.
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from appserver import __version__
from appserver.address_file import remove_address_file, write_address_file
from appserver.app import static
from appserver.app.agents import Agent, AgentError, load_agent
from appserver.app.store import StateStore
from appserver.config import Config, ConfigError
from appserver.connection import (
    DEFAULT_QUEUE_BYTES,
    SOCKET_QUEUE_MESSAGES,
    STDIO_QUEUE_MESSAGES,
    Connection,
    FrameTransport,
    Origin,
    QueueLimits,
    run_connection,
)
from appserver.home import (
    HomeError,
    StartupLock,
    control_socket_path,
    startup_lock,
    state_db_path,
)
from appserver.ingress import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, Ingress
from appserver.metrics import exposition
from appserver.processor import Processor, ServerInfo
from appserver.registry import Registry
from appserver.router import Router
from appserver.server_requests import ServerRequests
from appserver.transport import accept
from appserver.transport.auth_flags import AuthArgs
from appserver.transport.inbound import DEFAULT_INBOUND_BYTES, InboundBudget
from appserver.transport.lines import LineTransport
from appserver.transport.listen import ListenTarget, Off, Stdio, Unix, WebSocket
from appserver.transport.peer import describe_peer
from appserver.transport.unix import (
    SocketIdentity,
    SocketPathError,
    bind_listener,
    prepare_socket_path,
    remove_socket_file,
    socket_identity,
)
from appserver.wire.errors import INTERNAL_ERROR
from appserver.wire.messages import ErrorObject

if TYPE_CHECKING:
    # The application (threads, handlers, protocol classes) is imported when the first request
    # that needs it arrives, not at startup (see `App`).
    from appserver.app.threads import Threads

    # The WebSocket stack (h11, wsproto) is imported only when a socket listener starts.
    from appserver.transport.http_front import FrontPolicy

log = logging.getLogger(__name__)

NO_TRANSPORT_MESSAGE = (
    "no transport configured; use --listen stdio://, unix://, unix://PATH or ws://IP:PORT"
)
CLIENT_GONE = ErrorObject(INTERNAL_ERROR, "the client closed its input before replying")
#: After everyone was told to disconnect, how long connections get to close before being cut.
DISCONNECT_GRACE_SECONDS = 2.0
#: How long turns interrupted at shutdown get to report their end (normally milliseconds; a
#: command that ignores its kill must not hold up the exit).
INTERRUPT_GRACE_SECONDS = 1.0


class StartupError(Exception):
    """A refused start: the process prints `Error: <message>` and exits 1."""


@attrs.frozen
class ServerConfig:
    listen: ListenTarget
    home: Path
    drain_timeout: float = 30.0
    #: Where to write the listening address once bound (`--address-file`).
    address_file: Path | None = None
    #: A socket connection that has not sent `initialize` by then is closed.
    initialize_timeout: float = 30.0
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_in_flight_per_connection: int = DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION
    #: Server-wide bytes that partly received socket messages may hold (`InboundBudget`).
    inbound_bytes: int = DEFAULT_INBOUND_BYTES
    auth: AuthArgs = attrs.Factory(AuthArgs)
    #: Agent specs (`echo`, `module:attr`); the first is the default model.
    agents: tuple[str, ...] = ("echo",)
    #: Session flags (`-c key=value`, `--enable`, `--disable`) over HOME/config.toml.
    config_overrides: tuple[tuple[str, Any], ...] = ()


def load_agents(specs: tuple[str, ...]) -> dict[str, Agent]:
    agents: dict[str, Agent] = {}
    for spec in (*specs, "echo"):
        try:
            agent = load_agent(spec)
        except AgentError as exc:
            raise StartupError(str(exc)) from exc
        agents.setdefault(agent.name, agent)
    return agents


class App:
    """The processor, and the application behind it.

    A lazy app builds its `threads` (and registers every method but `initialize` and the static
    ones) the first time a request needs them: `initialize` is answered without importing the
    handlers, the protocol classes and the agents' machinery, which are most of the startup.
    """

    def __init__(self, processor: Processor, build: Callable[[], Threads]) -> None:
        self.processor = processor
        self._build = build
        self._threads: Threads | None = None

    @property
    def threads(self) -> Threads:
        if self._threads is None:
            self._threads = self._build()
        return self._threads

    @property
    def running_turns(self) -> int:
        """Without loading the application: none can run before it is loaded."""
        return 0 if self._threads is None else self._threads.running_turns


def load_user_config(config: ServerConfig) -> Config:
    try:
        return Config.load(config.home, config.config_overrides)
    except ConfigError as exc:
        raise StartupError(exc.message) from exc


def build_app(
    config: ServerConfig,
    store: StateStore,
    turn_nursery: trio.Nursery,
    agents: dict[str, Agent],
    user_config: Config | None = None,
    *,
    lazy: bool = False,
) -> App:
    registry = Registry()
    router = Router()
    server_requests = ServerRequests(router)
    processor = Processor(
        registry,
        router,
        server_requests,
        ServerInfo(home=str(config.home), version=__version__),
        Ingress(config.max_in_flight, config.max_in_flight_per_connection),
    )
    if user_config is None:
        user_config = load_user_config(config)
    settings = user_config

    def load() -> Threads:
        from appserver import sandbox
        from appserver.app import handlers
        from appserver.app.threads import Threads

        # Before anything can run a command: confined commands must not reach the control
        # socket (an escape) nor the state.
        sandbox.hide(str(config.home))
        if (socket_path := socket_path_for(config)) is not None:
            sandbox.hide(str(socket_path))

        default_agent = next(iter(agents))
        threads = Threads(
            store, router, server_requests, agents, default_agent, turn_nursery, settings
        )
        processor.closed_hooks.append(threads.connection_closed)
        for agent in agents.values():
            # Optional agent hook: the configuration, before any turn (the openai agent reads its
            # endpoint settings from it).
            configure = getattr(agent, "configure", None)
            if configure is not None:
                configure(settings)
        handlers.register(registry, threads)
        return threads

    static.register(registry)
    app = App(processor, load)
    if lazy:
        registry.load_later(lambda: app.threads)
    else:
        app.threads  # noqa: B018 - builds it now
    return app


def socket_path_for(config: ServerConfig) -> Path | None:
    if isinstance(config.listen, Unix):
        return config.listen.path or control_socket_path(config.home)
    return None


@attrs.define
class Started:
    store: StateStore
    listeners: list[trio.SocketListener] = attrs.Factory(list)
    socket_identity: SocketIdentity | None = None


@asynccontextmanager
async def _held(lock: StartupLock) -> AsyncIterator[StartupLock]:
    try:
        yield lock
    finally:
        lock.release()


async def start(config: ServerConfig, lock: StartupLock | None = None) -> Started:
    """Everything that must not race another launch on this home, under its startup lock
    (`lock` if the caller already holds it; it is released before this returns)."""
    socket_path = socket_path_for(config)
    try:
        async with startup_lock(config.home) if lock is None else _held(lock):
            if socket_path is not None:
                prepare_socket_path(socket_path)
            try:
                store = await trio.to_thread.run_sync(StateStore.open, state_db_path(config.home))
            except Exception as exc:
                raise StartupError(
                    f"failed to initialize sqlite state runtime under {config.home}: {exc}"
                ) from exc
            started = Started(store)
            try:
                if socket_path is not None:
                    started.listeners = [bind_listener(socket_path)]
                    started.socket_identity = socket_identity(socket_path)
                elif isinstance(config.listen, WebSocket):
                    listen = config.listen
                    started.listeners = await trio.open_tcp_listeners(listen.port, host=listen.host)
            except BaseException:
                store.close()
                raise
            return started
    except (HomeError, SocketPathError) as exc:
        raise StartupError(str(exc)) from exc
    except OSError as exc:
        raise StartupError(f"{exc.strerror or exc} ({exc.filename or config.home})") from exc


def metrics_text(app: App) -> bytes:
    from appserver.app.handlers import diagnostics

    return exposition(diagnostics.gauges(app.threads))


def websocket_front(config: ServerConfig) -> FrontPolicy:
    """Health endpoints, Origin refusal and bearer auth for ws://; refuses unsafe configs."""
    from appserver.transport.auth import AuthConfigError, authorizer, load_policy
    from appserver.transport.http_front import FrontPolicy

    assert isinstance(config.listen, WebSocket)
    try:
        policy = load_policy(config.auth)
    except AuthConfigError as exc:
        raise StartupError(str(exc)) from exc
    if policy is None and not config.listen.is_loopback:
        raise StartupError(
            f"refusing to start non-loopback websocket listener {config.listen.display()} "
            "without auth; configure `--ws-auth capability-token` or "
            "`--ws-auth signed-bearer-token`"
        )
    return FrontPolicy(
        health_paths=frozenset({"/healthz", "/readyz"}),
        reject_origin=True,
        authorize=authorizer(policy) if policy is not None else None,
        name="websocket listener",
    )


async def serve(config: ServerConfig, lock: StartupLock | None = None) -> None:
    if isinstance(config.listen, Off):
        if lock is not None:
            lock.release()
        raise StartupError(NO_TRANSPORT_MESSAGE)
    agents = load_agents(config.agents)
    user_config = load_user_config(config)
    if isinstance(config.listen, Stdio):
        from appserver.transport.stdio import claim_stdio

        receive, send = claim_stdio()
        started = await start(config, lock)
        try:
            async with trio.open_nursery() as turns:
                app = build_app(config, started.store, turns, agents, user_config, lazy=True)
                await serve_stdio(app.processor, receive, send, config)
                # Nobody is left to answer approvals: turns waiting on one see it declined.
                app.processor.server_requests.cancel_all(CLIENT_GONE)
                await drain_turns(app, config.drain_timeout, signals=None)
                turns.cancel_scope.cancel()
        finally:
            started.store.close()
        return
    from appserver.transport.http_front import FrontPolicy
    from appserver.transport.websocket import MAX_UNFRAGMENTED_HEADER

    if isinstance(config.listen, WebSocket):
        origin, policy, headers = Origin.WEBSOCKET, websocket_front(config), []
    else:
        origin, policy = Origin.UNIX, FrontPolicy(name="control socket")
        headers = [MAX_UNFRAGMENTED_HEADER]
    budget = InboundBudget(config.inbound_bytes)
    socket_path = socket_path_for(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        started = await start(config, lock)

        address = ""

        def stopped_accepting() -> None:
            if socket_path is not None:
                remove_socket_file(socket_path, started.socket_identity)
            if config.address_file is not None and address:
                remove_address_file(config.address_file, address)

        try:
            async with trio.open_nursery() as turns:
                app = build_app(config, started.store, turns, agents, user_config, lazy=True)

                if isinstance(config.listen, WebSocket):
                    policy = attrs.evolve(policy, metrics=functools.partial(metrics_text, app))

                async def handle(stream: trio.SocketStream) -> None:
                    await serve_socket_client(
                        app.processor, stream, config, origin, policy, headers, budget
                    )

                if isinstance(config.listen, WebSocket):
                    port = started.listeners[0].socket.getsockname()[1]
                    address = f"ws://{config.listen.display(port)}"
                else:
                    address = f"unix://{socket_path}"
                if config.address_file is not None:
                    write_address_file(config.address_file, address)  # before the banner
                if socket_path is not None:
                    _banner_unix(socket_path)
                else:
                    _banner_websocket(config, started.listeners)
                await serve_listeners(
                    app, started.listeners, handle, signals, stopped_accepting, config
                )
                turns.cancel_scope.cancel()
        finally:
            stopped_accepting()
            started.store.close()


async def drain_turns(app: App, drain_timeout: float, signals: AsyncIterator[int] | None) -> bool:
    """Wait for running turns to finish: up to `drain_timeout`, or until a second
    SIGTERM/SIGINT forces. Returns False if turns were still running when it gave up."""
    if not app.running_turns:
        return True
    threads = app.threads
    log.info(
        "shutdown: waiting up to %ss for %d running turn(s)", drain_timeout, threads.running_turns
    )
    async with trio.open_nursery() as nursery:
        if signals is not None:

            async def force_on_second_signal() -> None:
                async for signum in signals:
                    if signum in (signal.SIGTERM, signal.SIGINT):
                        log.info(
                            "received second shutdown signal; forcing with %d running turn(s)",
                            threads.running_turns,
                        )
                        nursery.cancel_scope.cancel()
                        return
                    log.info("received SIGHUP while draining; still waiting")

            nursery.start_soon(force_on_second_signal)
        with trio.move_on_after(drain_timeout):
            await threads.wait_idle()
        nursery.cancel_scope.cancel()
    return threads.running_turns == 0


def _banner_websocket(config: ServerConfig, listeners: list[trio.SocketListener]) -> None:
    assert isinstance(config.listen, WebSocket)
    address = config.listen.display(listeners[0].socket.getsockname()[1])
    note = (
        "binds localhost only (use SSH port-forwarding for remote access)"
        if config.listen.is_loopback
        else "websocket auth is required for non-localhost listeners"
    )
    print(
        "appserver (WebSockets)\n"
        f"  listening on: ws://{address}\n"
        f"  readyz: http://{address}/readyz\n"
        f"  healthz: http://{address}/healthz\n"
        f"  note: {note}",
        file=sys.stderr,
        flush=True,
    )
    log.info("app-server websocket listening on ws://%s", address)


def _appserver_command() -> str:
    """How a shell runs this appserver: `appserver` if PATH finds this one, else its path (a
    venv's bin is usually not on PATH, e.g. under `make run`)."""
    script = Path(sys.executable).parent / "appserver"
    if not script.exists():
        return f"{sys.executable} -m appserver"
    found = shutil.which("appserver")
    on_path = found is not None and Path(found).resolve() == script.resolve()
    return "appserver" if on_path else str(script)


def _banner_unix(path: Path) -> None:
    appserver = _appserver_command()
    print(
        "appserver (unix control socket)\n"
        f"  listening on: unix://{path}\n"
        f"  connect:      codex --remote unix://{path}\n"
        f"  JSON lines:   {appserver} attach --sock {path}\n"
        f"  raw bytes:    {appserver} proxy --sock {path}",
        file=sys.stderr,
        flush=True,
    )
    log.info("app-server control socket listening at %s", path)


async def serve_stdio(
    processor: Processor,
    receive: trio.abc.ReceiveStream,
    send: trio.abc.SendStream,
    config: ServerConfig,
) -> None:
    connection = Connection(
        Origin.STDIO,
        disconnectable=False,
        limits=QueueLimits(STDIO_QUEUE_MESSAGES, config.queue_bytes),
    )
    transport = LineTransport(receive, send)
    await run_connection(connection, transport, processor, drain_timeout=config.drain_timeout)
    if transport.oversized:
        log.error("stdin line exceeds the message size limit; closing")
    log.info("stdin reader finished (EOF)")


async def serve_socket_client(
    processor: Processor,
    stream: trio.abc.Stream,
    config: ServerConfig,
    origin: Origin,
    policy: FrontPolicy,
    extra_headers: list[tuple[bytes, bytes]],
    budget: InboundBudget | None = None,
) -> None:
    peer = describe_peer(stream)

    async def serve_transport(transport: FrameTransport) -> None:
        connection = Connection(
            origin,
            disconnectable=True,
            limits=QueueLimits(SOCKET_QUEUE_MESSAGES, config.queue_bytes),
        )
        # Cleared by a successful initialize: a connection that never sends one cannot hold an
        # fd forever.
        connection.cancel_scope.deadline = trio.current_time() + config.initialize_timeout
        started = time.monotonic()
        log.info("connection %s opened: %s from %s", connection.id, origin.value, peer)
        # A JSON-lines client ends its input as on stdio, and may still read the answers; a
        # WebSocket's end of input is its close.
        drain = config.drain_timeout if isinstance(transport, LineTransport) else 0.0
        await run_connection(connection, transport, processor, drain_timeout=drain)
        log.info(
            "connection %s closed: %s from %s, after %.1f s",
            connection.id,
            origin.value,
            peer,
            time.monotonic() - started,
        )
        if not connection.session.initialized and connection.cancel_scope.cancelled_caught:
            log.info(
                "closed connection %s: it never sent initialize within %ss",
                connection.id,
                config.initialize_timeout,
            )

    if origin is Origin.UNIX:
        from appserver.transport.control import serve_control_client

        await serve_control_client(stream, policy, serve_transport, extra_headers, budget)
    else:
        from appserver.transport.websocket import serve_websocket_client

        await serve_websocket_client(stream, policy, serve_transport, extra_headers, budget=budget)


async def serve_listeners(
    app: App,
    listeners: list[trio.SocketListener],
    handle: Callable[[trio.SocketStream], Awaitable[None]],
    signals: AsyncIterator[int],
    stopped_accepting: Callable[[], None],
    config: ServerConfig,
) -> None:
    """Accept until a shutdown signal; then stop accepting, let running turns finish (SIGHUP:
    without a deadline; a second SIGTERM/SIGINT forces), and disconnect everyone."""
    router = app.processor.router
    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as accepting:
            accepting.start_soon(accept.serve_listeners, handle, listeners, connections)
            first: int = signal.SIGTERM
            async for first in signals:
                log.info(
                    "received %s; stopping (connections=%d, running turns=%d)",
                    signal.Signals(first).name,
                    len(router),
                    app.running_turns,
                )
                break
            accepting.cancel_scope.cancel()
        for listener in listeners:
            await listener.aclose()
        stopped_accepting()
        deadline = math.inf if first == signal.SIGHUP else config.drain_timeout
        await drain_turns(app, deadline, signals)
        with trio.move_on_after(DISCONNECT_GRACE_SECONDS):
            if app.running_turns:
                # Cut short: interrupt them while their subscribers are still connected, so they
                # hear `turn/completed` (interrupted) before being disconnected.
                count = app.threads.interrupt_running()
                log.info("shutdown: interrupting %d running turn(s)", count)
                with trio.move_on_after(INTERRUPT_GRACE_SECONDS):
                    await app.threads.wait_idle()
            # Let every connection write what it has queued (e.g. the last turn/completed) first.
            remaining = router.connections
            for connection in remaining:
                connection.close_outbound()
            for connection in remaining:
                await connection.flushed.wait()
        for connection in router.connections:
            connection.close_outbound()
        count = router.disconnect_all()
        log.info("disconnecting %d connection(s)", count)
        connections.cancel_scope.deadline = trio.current_time() + DISCONNECT_GRACE_SECONDS


def run(config: ServerConfig, lock: StartupLock | None = None) -> int:
    try:
        trio.run(serve, config, lock)
    except StartupError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
