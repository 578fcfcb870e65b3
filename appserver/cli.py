"""Command line: `appserver [serve flags]`, also reachable as `appserver app-server …`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from appserver import __version__
from appserver.config_flags import (
    ConfigFlags,
    add_config_flags,
    flags_of,
    split_root_flags,
)
from appserver.home import (
    HomeError,
    StartupLock,
    acquire_startup_lock,
    control_socket_path,
    resolve_home,
)
from appserver.serve_flags import add_forwarded_flags, given_flags

if TYPE_CHECKING:
    # Imported where the server path needs them: `attach` must start without attrs and auth.
    from appserver.transport.listen import ListenTarget


def _listen(value: str) -> ListenTarget:
    from appserver.transport.listen import ListenUrlError, parse_listen_url

    try:
        return parse_listen_url(value)
    except ListenUrlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


SUBCOMMANDS_HELP = """\
subcommands (`appserver app-server SUBCOMMAND` works too):
  attach                 share a running server from a JSON-lines client (stdio <-> socket)
  proxy                  relay raw bytes between stdio and a running server's socket
  daemon                 start|stop|restart|status a detached server for the home
  generate-json-schema   write the Codex 0.169 protocol JSON Schema (--out DIR [--experimental])
  generate-ts            write the Codex 0.169 protocol TypeScript types (--out DIR)

Run `appserver SUBCOMMAND --help` for its options."""

#: --log-level: Python's level names and Codex's (RUST_LOG) ones; `trace` is DEBUG here.
LOG_LEVELS = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
}
WS_AUTH_FLAGS = (
    "ws_auth",
    "ws_token_file",
    "ws_token_sha256",
    "ws_shared_secret_file",
    "ws_issuer",
    "ws_audience",
    "ws_max_clock_skew_seconds",
)


def _log_level(value: str) -> str:
    level = LOG_LEVELS.get(value.strip().lower())
    if level is None:
        raise argparse.ArgumentTypeError(
            f"unknown level {value!r}; use one of {', '.join(LOG_LEVELS)}"
        )
    return level


def _positive_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def serve_parser() -> argparse.ArgumentParser:
    from appserver.ingress import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION
    from appserver.transport.auth_flags import AuthMode

    parser = argparse.ArgumentParser(
        prog="appserver",
        description="A Codex-compatible app-server. Serves until its transport closes.",
        epilog=SUBCOMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"appserver {__version__}")
    listen = parser.add_mutually_exclusive_group()
    listen.add_argument(
        "--listen",
        type=_listen,
        default=None,
        metavar="URL",
        help="stdio:// (default), unix://, unix://PATH, ws://IP:PORT or off",
    )
    listen.add_argument("--stdio", action="store_true", help="same as --listen stdio://")
    parser.add_argument("--home", help="server home (default $APPSERVER_HOME or ~/.appserver)")
    parser.add_argument(
        "--drain-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="how long running work may finish at shutdown (default 30)",
    )
    parser.add_argument(
        "--address-file",
        type=Path,
        metavar="PATH",
        help="write the listening address (ws://IP:PORT or unix://PATH) to PATH once bound",
    )
    parser.add_argument(
        "--initialize-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="close a socket connection that has not sent initialize by then (default 30)",
    )
    parser.add_argument(
        "--outbound-queue-bytes",
        type=int,
        default=64 * 1024 * 1024,
        metavar="N",
        help="per-connection outbound byte budget (default 64 MiB)",
    )
    parser.add_argument(
        "--inbound-bytes",
        type=int,
        default=256 * 1024 * 1024,
        metavar="N",
        help="server-wide bytes that partly received socket messages may hold (default 256 MiB)",
    )
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT, metavar="N")
    parser.add_argument(
        "--max-in-flight-per-connection",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
        metavar="N",
    )
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=None,
        metavar="LEVEL",
        help="trace, debug, info (default), warn(ing), error or critical",
    )
    add_config_flags(parser.add_argument_group("configuration (over HOME/config.toml)"))
    parser.add_argument(
        "--dangerously-allow-unsandboxed",
        action="store_true",
        help="run commands UNCONFINED when their sandbox policy cannot be enforced here "
        "(bubblewrap missing or unusable); logged at WARNING",
    )
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="NAME|module:attr",
        help="an agent served as a model (repeatable; the first is the default; echo is built in)",
    )
    auth = parser.add_argument_group("ws:// auth (checked at the WebSocket upgrade)")
    auth.add_argument(
        "--ws-auth",
        type=AuthMode,
        choices=list(AuthMode),
        metavar="{capability-token,signed-bearer-token}",
    )
    auth.add_argument("--ws-token-file", metavar="ABS_PATH", help="file holding the token")
    auth.add_argument("--ws-token-sha256", metavar="HEX", help="SHA-256 of the token")
    auth.add_argument("--ws-shared-secret-file", metavar="ABS_PATH", help="HS256 secret (>= 32 B)")
    auth.add_argument("--ws-issuer", help="required `iss` claim")
    auth.add_argument("--ws-audience", help="required `aud` claim")
    auth.add_argument("--ws-max-clock-skew-seconds", type=int, metavar="N", help="default 30")
    return parser


def relay_parser(command: str) -> argparse.ArgumentParser:
    if command == "proxy":
        description = "Relay raw bytes between stdio and a running server's control socket."
    else:
        description = (
            "Relay JSON lines between stdio and a running appserver's control socket, so "
            "JSON-lines clients can share that server."
        )
    parser = argparse.ArgumentParser(
        prog=f"appserver {command}", description=description, allow_abbrev=False
    )
    parser.add_argument("--sock", help="socket path (default: the home's control socket)")
    parser.add_argument("--home", help="server home (default $APPSERVER_HOME or ~/.appserver)")
    if command == "attach":
        parser.add_argument(
            "--start",
            action="store_true",
            help="start a detached server for the home first if none answers",
        )
        parser.add_argument("--relay-log-level", default=None, help="attach's own log level")
        add_forwarded_flags(parser)
    else:
        parser.add_argument("--log-level", default=None)
    return parser


def _relay(command: str, args: list[str]) -> int:
    options = relay_parser(command).parse_args(args)
    own_level = options.log_level if command == "proxy" else options.relay_log_level
    if command == "proxy" or own_level:
        from appserver.logs import configure_logging

        configure_logging(own_level or "WARNING")  # attach reports on stderr itself
    home = resolve_home(options.home)
    sock = Path(os.path.abspath(options.sock)) if options.sock else control_socket_path(home)
    if command == "proxy":
        import trio

        from appserver.relay.proxy import proxy

        return trio.run(proxy, sock)
    # No trio here: joining a running server must start fast (see relay/attach.py).
    from appserver.relay.attach import attach

    return attach(sock, start=options.start, home=home, server_args=given_flags(options))


def daemon_parser() -> argparse.ArgumentParser:
    from appserver.daemon import STOP_GRACE_SECONDS

    parser = argparse.ArgumentParser(
        prog="appserver daemon",
        description=(
            "Manage a detached `appserver --listen unix://` server for the home. Each command "
            "prints one JSON object."
        ),
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "start": "start the server unless one answers (idempotent)",
        "stop": "stop the server this home's daemon started (SIGTERM, then SIGKILL)",
        "restart": "stop the server if running, then start one",
        "status": "report whether a server is running and its version",
    }
    for name, text in helps.items():
        command = commands.add_parser(name, help=text, description=text, allow_abbrev=False)
        command.add_argument("--home", help="server home (default $APPSERVER_HOME or ~/.appserver)")
        if name in ("start", "restart"):
            add_forwarded_flags(command)
        if name in ("stop", "restart"):
            command.add_argument(
                "--grace",
                type=_positive_float,
                default=STOP_GRACE_SECONDS,
                metavar="SECONDS",
                help=f"wait after SIGTERM before SIGKILL (default {STOP_GRACE_SECONDS:g})",
            )
    return parser


def _daemon(args: list[str]) -> int:
    from appserver import daemon

    options = daemon_parser().parse_args(args)
    from appserver.logs import configure_logging

    configure_logging("WARNING")
    home = resolve_home(options.home)
    grace = getattr(options, "grace", daemon.STOP_GRACE_SECONDS)
    server_args = given_flags(options) if options.command in ("start", "restart") else None
    return daemon.main(options.command, home, grace=grace, server_args=server_args)


def _early_startup(listen: ListenTarget, home: Path) -> StartupLock | None:
    """Take the startup lock and refuse a taken socket before the server is even imported
    (importing trio and the rest costs ~0.25 s of CPU: a launch storm's losers wait idle on
    the lock, then leave at once). None after printing the refusal."""
    from appserver.transport.listen import Unix
    from appserver.transport.unix import SocketPathError, prepare_socket_path

    try:
        lock = acquire_startup_lock(home)
    except (HomeError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return None
    if isinstance(listen, Unix):
        try:
            prepare_socket_path(listen.path or control_socket_path(home))
        except (SocketPathError, HomeError) as exc:
            lock.release()
            print(f"Error: {exc}", file=sys.stderr)
            return None
    return lock


GENERATORS: dict[str, Literal["json", "ts"]] = {
    "generate-json-schema": "json",
    "generate-ts": "ts",
}


def generate_parser(command: str) -> argparse.ArgumentParser:
    what = "JSON Schema" if command == "generate-json-schema" else "TypeScript types"
    parser = argparse.ArgumentParser(
        prog=f"appserver app-server {command}",
        description=f"Write the Codex 0.169 app-server protocol {what}, as `codex app-server "
        f"{command}` does.",
        allow_abbrev=False,
    )
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--experimental",
        action="store_true",
        help="include experimental methods and fields",
    )
    if command == "generate-ts":
        parser.add_argument(
            "-p", "--prettier", metavar="PRETTIER_BIN", help="format the files with Prettier"
        )
    add_config_flags(parser)
    return parser


def _generate(command: str, args: list[str]) -> int:
    import subprocess

    from appserver.codex_schema import write_bundle

    options = generate_parser(command).parse_args(args)
    out = Path(os.path.abspath(options.out))
    try:
        write_bundle(GENERATORS[command], experimental=options.experimental, out=out)
    except OSError as exc:
        print(f"Error: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    if getattr(options, "prettier", None):
        return subprocess.run([options.prettier, "--write", str(out)], check=False).returncode
    return 0


def _with_root_flags(command: str, args: list[str], root: ConfigFlags) -> list[str]:
    """Root config flags handed to a launcher subcommand, which forwards them to its server."""
    if not root.as_args():
        return args
    if command == "attach":
        return [*root.as_args(), *args]
    if command == "daemon" and args[:1] in (["start"], ["restart"]):
        return [args[0], *root.as_args(), *args[1:]]
    return args


def _check_ws_flags(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    from appserver.transport.listen import Off, Unix, WebSocket

    given = [name for name in WS_AUTH_FLAGS if getattr(options, name) is not None]
    if given and not isinstance(options.listen, WebSocket):
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        if isinstance(options.listen, Unix):
            listen = f"unix://{options.listen.path or ''}"
        else:
            listen = "off" if isinstance(options.listen, Off) else "stdio://"
        verb = "applies" if len(given) == 1 else "apply"
        parser.error(f"{flags} only {verb} to a ws:// listener, not to --listen {listen}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    root, args = split_root_flags(args)
    if args[:1] == ["app-server"]:
        more, args = split_root_flags(args[1:])
        root = root.then(more)
    if args[:1] in (["proxy"], ["attach"]):
        return _relay(args[0], _with_root_flags(args[0], args[1:], root))
    if args[:1] == ["daemon"]:
        return _daemon(_with_root_flags("daemon", args[1:], root))
    if args[:1] and args[0] in GENERATORS:
        return _generate(args[0], [*root.as_args(), *args[1:]])
    parser = serve_parser()
    options = parser.parse_args(args)
    _check_ws_flags(parser, options)
    flags = root.then(flags_of(options))
    from appserver.logs import configure_logging

    configure_logging(options.log_level)
    if options.dangerously_allow_unsandboxed:
        from appserver.sandbox import configure as configure_sandbox

        configure_sandbox(allow_unsandboxed=True)

    from appserver.config import ConfigError
    from appserver.transport.auth_flags import AuthArgs
    from appserver.transport.listen import DEFAULT_LISTEN_URL, parse_listen_url

    try:
        overrides = flags.overrides()
    except ConfigError as exc:
        print(f"Error: error parsing -c overrides: {exc}", file=sys.stderr)
        return 1
    from appserver.features import unknown_among

    unknown = unknown_among(flags.enable + flags.disable)
    if unknown is not None:
        print(f"Error: Unknown feature flag: {unknown}", file=sys.stderr)
        return 1
    listen = options.listen or parse_listen_url(DEFAULT_LISTEN_URL)
    home = resolve_home(options.home)
    lock = _early_startup(listen, home)
    if lock is None:
        return 1

    from appserver.server import ServerConfig, run

    config = ServerConfig(
        listen=listen,
        home=home,
        drain_timeout=options.drain_timeout,
        initialize_timeout=options.initialize_timeout,
        address_file=options.address_file,
        queue_bytes=options.outbound_queue_bytes,
        inbound_bytes=options.inbound_bytes,
        max_in_flight=options.max_in_flight,
        max_in_flight_per_connection=options.max_in_flight_per_connection,
        agents=tuple(options.agent) or ("echo",),
        config_overrides=tuple(overrides),
        auth=AuthArgs(
            mode=options.ws_auth,
            token_file=options.ws_token_file,
            token_sha256=options.ws_token_sha256,
            shared_secret_file=options.ws_shared_secret_file,
            issuer=options.ws_issuer,
            audience=options.ws_audience,
            max_clock_skew_seconds=options.ws_max_clock_skew_seconds,
        ),
    )
    return run(config, lock)
