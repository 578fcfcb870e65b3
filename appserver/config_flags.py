"""Codex's configuration flags on the command line: `-c/--config key=value`, `--enable FEATURE`,
`--disable FEATURE`, accepted before the subcommand (`appserver -c k=v app-server …`) and after
it (`appserver app-server -c k=v …`), as Codex's clap `global = true` arguments are.

Root flags (before the subcommand) come first, so flags after it win, as in Codex
(`prepend_root_overrides`). The values are parsed by `appserver.config.parse_overrides`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

CONFIG_HELP: Final = (
    "override a value of HOME/config.toml (dotted key path; the value is parsed as TOML, "
    "or else taken as a string); repeatable"
)
#: Flags taking a value; `-c` also as `-ckey=value`, the long ones also as `--flag=value`.
VALUE_FLAGS: Final = {
    "-c": "config",
    "--config": "config",
    "--enable": "enable",
    "--disable": "disable",
}


class ConfigFlags(NamedTuple):
    """(No attrs here: `attach` parses these and must start fast.)"""

    config: tuple[str, ...] = ()
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()

    def then(self, later: ConfigFlags) -> ConfigFlags:
        """These flags followed by `later` (which win)."""
        return ConfigFlags(
            self.config + later.config, self.enable + later.enable, self.disable + later.disable
        )

    def overrides(self) -> list[tuple[str, Any]]:
        """(key, value) pairs; raises appserver.config.ConfigError on a bad `-c`."""
        from appserver.config import parse_overrides

        return parse_overrides(self.config, self.enable, self.disable)

    def as_args(self) -> list[str]:
        args: list[str] = []
        for value in self.config:
            args += ["-c", value]
        for name in self.enable:
            args += ["--enable", name]
        for name in self.disable:
            args += ["--disable", name]
        return args


def add_config_flags(parser: argparse.ArgumentParser | Any) -> None:
    """`-c/--config`, `--enable`, `--disable` on a parser (or argument group)."""
    parser.add_argument(
        "-c", "--config", action="append", default=[], metavar="key=value", help=CONFIG_HELP
    )
    parser.add_argument(
        "--enable",
        action="append",
        default=[],
        metavar="FEATURE",
        help="enable a feature (repeatable); same as -c features.FEATURE=true",
    )
    parser.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="FEATURE",
        help="disable a feature (repeatable); same as -c features.FEATURE=false",
    )


def flags_of(options: argparse.Namespace) -> ConfigFlags:
    return ConfigFlags(
        tuple(getattr(options, "config", None) or ()),
        tuple(getattr(options, "enable", None) or ()),
        tuple(getattr(options, "disable", None) or ()),
    )


def split_root_flags(args: Sequence[str]) -> tuple[ConfigFlags, list[str]]:
    """The config flags that come before the first other argument, and the rest.

    A flag missing its value is left in the rest, where the subcommand's parser reports it.
    """
    found: dict[str, list[str]] = {"config": [], "enable": [], "disable": []}
    index = 0
    while index < len(args):
        arg = args[index]
        name, sep, inline = arg.partition("=")
        if arg in VALUE_FLAGS:
            if index + 1 >= len(args):
                break
            found[VALUE_FLAGS[arg]].append(args[index + 1])
            index += 2
        elif sep and name in VALUE_FLAGS and name != "-c":
            found[VALUE_FLAGS[name]].append(inline)
            index += 1
        elif arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"):
            found["config"].append(arg[2:])
            index += 1
        else:
            break
    flags = ConfigFlags(tuple(found["config"]), tuple(found["enable"]), tuple(found["disable"]))
    return flags, list(args[index:])
