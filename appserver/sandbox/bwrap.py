"""The bubblewrap command line that confines a command under a policy, modelled on Codex's
codex-rs/linux-sandbox `create_bwrap_command_args`.

Mount order matters: `--ro-bind / /` makes everything read-only, `--dev /dev` gives a minimal
device tree, `--bind R R` re-enables writes for each writable root (parents first), and the
protected subpaths of those roots (`.git`, `.codex`, `.agents`) are bound read-only last so they
win. A fresh PID namespace (`--unshare-pid`, `--proc /proc`) means killing bwrap kills
everything the command started; `--unshare-net` leaves only a down loopback when network is
off; `--new-session` stops the command from pushing input into a terminal (TIOCSTI);
`--die-with-parent` ends it if the server dies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from appserver.sandbox.policy import PROTECTED_SUBPATHS, Policy, writable_roots


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def protected_binds(roots: Sequence[str]) -> list[str]:
    """`--ro-bind` arguments for the protected subpaths that exist under writable roots. A
    protected path that is a symlink gets `/dev/null` mounted over it so it cannot be
    re-pointed; a missing one is left alone (bwrap would have to create it on the host)."""
    args: list[str] = []
    for root in roots:
        for name in PROTECTED_SUBPATHS:
            path = os.path.join(root, name)
            if os.path.islink(path):
                args += ["--ro-bind", "/dev/null", path]
            elif os.path.exists(path):
                args += ["--ro-bind", path, path]
    return args


def bwrap_argv(
    argv: Sequence[str],
    policy: Policy,
    cwd: str,
    *,
    bwrap: str = "bwrap",
    tmpdir: str | None = None,
    hidden: Sequence[str] = (),
) -> list[str]:
    """The full command line running `argv` in `cwd` under `policy` (a confined one:
    `readOnly` or `workspaceWrite`). What `hidden` names (the server's home, its control
    socket) is out of reach: a directory is covered by an empty read-only tmpfs (unless the
    cwd is inside it), a file or socket by /dev/null."""
    args = [
        bwrap,
        "--new-session",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
    ]
    roots = writable_roots(policy, cwd, tmpdir)
    for root in roots:
        args += ["--bind", root, root]
    args += protected_binds(roots)
    covered: list[str] = []
    for path in hidden:
        resolved = os.path.realpath(path)
        if _under(resolved, covered):
            continue  # inside a hidden directory already (the home's own control socket)
        if os.path.isdir(resolved):
            if not _under(os.path.realpath(cwd), [resolved]):
                covered.append(resolved)
                args += [
                    "--perms",
                    "0555",
                    "--tmpfs",
                    resolved,
                    "--remount-ro",
                    resolved,
                ]
        elif os.path.exists(resolved):
            args += ["--ro-bind", "/dev/null", resolved]
    args.append("--unshare-pid")
    if not policy.network:
        args.append("--unshare-net")
    args += ["--proc", "/proc", "--chdir", cwd, "--", *argv]
    return args


def protected_paths(policy: Policy, cwd: str, tmpdir: str | None = None) -> list[str]:
    """The paths `bwrap_argv` keeps read-only inside writable roots (for tests and docs)."""
    roots = writable_roots(policy, cwd, tmpdir)
    binds = protected_binds(roots)
    return [binds[i + 2] for i in range(0, len(binds), 3) if _under(binds[i + 2], roots)]
