"""The serve flags a launcher passes on to the server it starts (`daemon start|restart`,
`attach --start`), and their record in the home so `restart` keeps them.

Forwarded: `--agent` (repeatable), `--log-level`, `--drain-timeout`,
`--dangerously-allow-unsandboxed` and the config overrides `-c/--config key=value`, `--enable F`,
`--disable F`. `--listen` is not: a launcher's server is the home's `unix://` control socket,
which is what it waits for and what `daemon stop` manages (serve ws:// with `appserver --listen`).

The record, `HOME/app-server-daemon/server-args.json` (`{"args": [...]}`), is written when a
launcher starts a server with flags given on its command line; a launch without any uses the
recorded ones, so `daemon restart` (and `stop` then `start`) keep what the server was started
with. Giving flags again replaces the record; `--no-saved-flags` starts without it (and clears
it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Final

RECORD_NAME: Final = "server-args.json"
DAEMON_DIR_NAME: Final = "app-server-daemon"


def add_forwarded_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "server flags (passed to the server this starts; recorded so restart keeps them)"
    )
    group.add_argument(
        "--agent",
        action="append",
        default=None,
        metavar="NAME|module:attr",
        help="an agent served as a model (repeatable; the first is the default)",
    )
    group.add_argument("--log-level", default=None, help="the server's log level")
    group.add_argument("--drain-timeout", default=None, metavar="SECONDS")
    group.add_argument("--dangerously-allow-unsandboxed", action="store_true", default=None)
    group.add_argument(
        "-c", "--config", action="append", default=None, metavar="key=value", dest="config"
    )
    group.add_argument("--enable", action="append", default=None, metavar="FEATURE")
    group.add_argument("--disable", action="append", default=None, metavar="FEATURE")
    group.add_argument(
        "--no-saved-flags",
        action="store_true",
        help="ignore (and forget) the flags recorded by an earlier start",
    )


def forwarded_argv(options: argparse.Namespace) -> list[str]:
    """The serve flags given on the launcher's command line, as server arguments."""
    argv: list[str] = []
    for spec in options.agent or []:
        argv += ["--agent", spec]
    if options.log_level:
        argv += ["--log-level", options.log_level]
    if options.drain_timeout is not None:
        argv += ["--drain-timeout", str(options.drain_timeout)]
    if options.dangerously_allow_unsandboxed:
        argv.append("--dangerously-allow-unsandboxed")
    for override in options.config or []:
        argv += ["-c", override]
    for feature in options.enable or []:
        argv += ["--enable", feature]
    for feature in options.disable or []:
        argv += ["--disable", feature]
    return argv


def record_path(home: Path) -> Path:
    return home / DAEMON_DIR_NAME / RECORD_NAME


def read_record(home: Path) -> list[str]:
    """The recorded server arguments; [] if none (or the file is not ours)."""
    import orjson  # not at module level: `attach` imports this module and must start fast

    try:
        value = orjson.loads(record_path(home).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return []
    args = value.get("args") if isinstance(value, dict) else None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return []
    return list(args)


def write_record(home: Path, args: list[str]) -> None:
    """Replace the record atomically (readers see the old file or the new one)."""
    import orjson

    path = record_path(home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps({"args": args}))
    os.replace(temporary, path)


def clear_record(home: Path) -> None:
    try:
        record_path(home).unlink()
    except FileNotFoundError:
        pass


def launch_args(home: Path, given: list[str] | None) -> list[str]:
    """The server arguments for a launch: `given` (None: nothing said, use the record)."""
    return read_record(home) if given is None else given


def given_flags(options: argparse.Namespace) -> list[str] | None:
    """What the command line says about server flags: None if nothing (use the record), the
    flags otherwise (`[]` with `--no-saved-flags`)."""
    argv = forwarded_argv(options)
    if argv or options.no_saved_flags:
        return argv
    return None
