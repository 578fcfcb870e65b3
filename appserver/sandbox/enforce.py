"""Whether policies can be enforced on this machine, and turning a command into its confined
form — or refusing it (fail closed).

bubblewrap is probed once, on first use (a `bwrap` that builds the same namespaces a confined
command needs and runs `/bin/true`), and the answer is cached and logged at INFO. When it cannot
confine, a command under `readOnly` or `workspaceWrite` is refused with `SandboxUnavailable`,
unless the operator opted in with `--dangerously-allow-unsandboxed` (or
`APPSERVER_DANGEROUSLY_ALLOW_UNSANDBOXED=1`); then it runs unconfined and every such command is
logged at WARNING. `APPSERVER_BWRAP` names another bwrap binary (`bwrap` on `$PATH` otherwise).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Final

import attrs
import trio

from appserver.sandbox.bwrap import bwrap_argv
from appserver.sandbox.policy import Policy

log = logging.getLogger(__name__)

ALLOW_ENV: Final = "APPSERVER_DANGEROUSLY_ALLOW_UNSANDBOXED"
BWRAP_ENV: Final = "APPSERVER_BWRAP"
PROBE_TIMEOUT: Final = 10.0


class SandboxUnavailable(Exception):
    """A confined command was refused: its policy cannot be enforced here."""


@attrs.frozen
class Availability:
    bwrap: str | None
    #: Why bwrap cannot confine here; None when it can.
    problem: str | None

    @property
    def works(self) -> bool:
        return self.problem is None


@attrs.define
class _State:
    allow_unsandboxed: bool | None = None
    availability: Availability | None = None
    hidden: list[str] = attrs.Factory(list)
    lock: trio.Lock | None = None


_state = _State()


def configure(*, allow_unsandboxed: bool) -> None:
    """Set the operator's opt-in (the `--dangerously-allow-unsandboxed` flag)."""
    _state.allow_unsandboxed = allow_unsandboxed
    if allow_unsandboxed:
        log.warning(
            "--dangerously-allow-unsandboxed: commands whose sandbox policy cannot be enforced "
            "will run UNCONFINED"
        )


def hide(directory: str) -> None:
    """Keep `directory` out of sight of every confined command (the server hides its home)."""
    if directory not in _state.hidden:
        _state.hidden.append(directory)


def allow_unsandboxed() -> bool:
    if _state.allow_unsandboxed is not None:
        return _state.allow_unsandboxed
    return os.environ.get(ALLOW_ENV, "") not in ("", "0", "false")


def reset() -> None:
    """Forget the probe and the opt-in (tests change the environment between runs)."""
    _state.allow_unsandboxed = None
    _state.availability = None
    _state.lock = None


async def _probe() -> Availability:
    bwrap = shutil.which(os.environ.get(BWRAP_ENV) or "bwrap")
    if bwrap is None:
        return Availability(
            None,
            "bubblewrap (bwrap) is not installed; install the Debian package bubblewrap",
        )
    argv = bwrap_argv(["/bin/true"], Policy("readOnly"), "/", bwrap=bwrap)
    try:
        with trio.fail_after(PROBE_TIMEOUT):
            done = await trio.run_process(
                argv,
                capture_stderr=True,
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
    except (OSError, trio.TooSlowError) as exc:
        return Availability(bwrap, f"{bwrap} could not be run: {exc}")
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        return Availability(bwrap, f"{bwrap} cannot create its namespaces here: {reason}")
    return Availability(bwrap, None)


async def availability() -> Availability:
    """The cached probe (run on first call)."""
    if _state.availability is None:
        if _state.lock is None:
            _state.lock = trio.Lock()
        async with _state.lock:
            if _state.availability is None:
                found = await _probe()
                _state.availability = found
                if found.works:
                    log.info("sandbox: bubblewrap at %s confines commands", found.bwrap)
                else:
                    log.warning("sandbox: cannot confine commands: %s", found.problem)
    return _state.availability


async def confine(
    argv: Sequence[str], policy: Policy, cwd: str, *, tmpdir: str | None = None
) -> list[str]:
    """The argv to execute for `argv` under `policy`; `SandboxUnavailable` when the policy
    cannot be enforced and the operator did not opt in to running unconfined."""
    if not argv:
        raise ValueError("empty command")
    if not policy.confined:
        return list(argv)
    found = await availability()
    if found.works:
        assert found.bwrap is not None
        return bwrap_argv(argv, policy, cwd, bwrap=found.bwrap, tmpdir=tmpdir, hidden=_state.hidden)
    if allow_unsandboxed():
        log.warning(
            "running UNCONFINED despite the %s sandbox policy (%s): %s",
            policy.kind,
            found.problem,
            " ".join(argv),
        )
        return list(argv)
    raise SandboxUnavailable(
        f"sandbox unavailable, refusing to run a {policy.kind} command: {found.problem} "
        "(start appserver with --dangerously-allow-unsandboxed to run it unconfined)"
    )
