"""Commands known to be safe (read-only), ported from Codex's `is_known_safe_command`
(codex-rs/shell-command/src/command_safety/is_safe_command.rs, the Linux rules).

Under the `untrusted` approval policy only these run without asking. A `bash -lc SCRIPT`
(or `sh`/`zsh`) is safe when SCRIPT is plain words joined by `&&`, `||`, `;` or `|` and every
command in it is safe; anything else in the script (redirections, subshells, `$`, backticks)
makes it unknown, hence not safe.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from typing import Final

ALWAYS_SAFE: Final = frozenset(
    {
        "cat", "cd", "cut", "echo", "expr", "false", "grep", "head", "id", "ls", "nl", "paste",
        "pwd", "rev", "seq", "stat", "tail", "tr", "true", "uname", "uniq", "wc", "which",
        "whoami", "numfmt", "tac",
    }
)  # fmt: skip
UNSAFE_FIND_OPTIONS: Final = frozenset(
    {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint", "-fprint0", "-fprintf"}
)
UNSAFE_RG_WITH_ARGS: Final = ("--pre", "--hostname-bin")
UNSAFE_RG_FLAGS: Final = frozenset({"--search-zip", "-z"})
SHELLS: Final = frozenset({"bash", "sh", "zsh"})
SCRIPT_OPERATORS: Final = frozenset({"&&", "||", ";", "|"})
SED_N_ARG: Final = re.compile(r"^(\d+,)?\d+p$")
#: Characters that make a script more than plain words: expansions, substitutions, globs
#: that could reach further, redirections and grouping are caught as operators by shlex.
NOT_PLAIN: Final = re.compile(r"[$`\\]")


def is_known_safe_command(argv: Sequence[str]) -> bool:
    command = ["bash" if word == "zsh" else word for word in argv]
    if is_safe_to_exec(command):
        return True
    scripts = plain_script_commands(command)
    return scripts is not None and all(is_safe_to_exec(c) for c in scripts)


def is_safe_to_exec(command: Sequence[str]) -> bool:
    if not command:
        return False
    name = os.path.basename(command[0])
    args = command[1:]
    if name in ALWAYS_SAFE:
        return True
    if name == "base64":
        return not any(
            a in ("-o", "--output") or a.startswith("--output=") or (a.startswith("-o"))
            for a in args
        )
    if name == "find":
        return not any(a in UNSAFE_FIND_OPTIONS for a in command)
    if name == "rg":
        return not any(
            a in UNSAFE_RG_FLAGS
            or any(a == o or a.startswith(o + "=") for o in UNSAFE_RG_WITH_ARGS)
            for a in command
        )
    if name == "sed":
        return len(command) <= 4 and args[:1] == ["-n"] and bool(SED_N_ARG.match(args[1:2][0]))
    return False


def plain_script_commands(command: Sequence[str]) -> list[list[str]] | None:
    """The commands of `bash -lc SCRIPT` if SCRIPT is only plain words and the allowed
    operators; None otherwise."""
    if len(command) != 3 or command[0] not in SHELLS or command[1] not in ("-lc", "-c"):
        return None
    script = command[2]
    if NOT_PLAIN.search(script):
        return None
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in SCRIPT_OPERATORS:
            if not commands[-1]:
                return None
            commands.append([])
        elif token and set(token) <= set("();<>|&"):
            return None
        else:
            commands[-1].append(token)
    if not commands[-1]:
        return None
    return commands


def display_command(argv: Sequence[str]) -> str:
    """The command line to show and run: the script of `bash -lc SCRIPT`, else argv quoted."""
    if len(argv) == 3 and os.path.basename(argv[0]) in SHELLS and argv[1] in ("-lc", "-c"):
        return argv[2]
    return shlex.join(argv)
