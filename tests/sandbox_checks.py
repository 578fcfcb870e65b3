"""What the sandbox and process tests share: a bwrap that works (or a failure saying why there is
none), a directory outside every root a workspace-write command may write, and a look at which
processes are alive."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from appserver import sandbox
from appserver.sandbox import enforce


async def require_bwrap() -> None:
    """Fail (never skip) when bubblewrap cannot confine here: `make test` installs it."""
    enforce.reset()
    found = await sandbox.availability()
    if not found.works:
        pytest.fail(
            f"these tests need a working bubblewrap: {found.problem} "
            "(`make test` installs Debian bubblewrap when run as root)",
            pytrace=False,
        )


@pytest.fixture
def outside_dir() -> Iterator[Path]:
    """A writable directory outside /tmp, $TMPDIR and the test's cwd (under /var/tmp)."""
    path = Path(tempfile.mkdtemp(prefix="appserver-outside-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def running_with(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found
