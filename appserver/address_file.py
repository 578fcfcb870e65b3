"""`--address-file PATH`: where a script finds the listening address (`ws://IP:PORT` with the
port the OS picked for port 0, or `unix://PATH`), one line, written once the listener is bound
and removed on clean shutdown if it still holds our address."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_address_file(path: Path, address: str) -> None:
    """Atomically: a reader sees the whole line or no file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(f"{address}\n")
    os.replace(partial, path)


def remove_address_file(path: Path, address: str) -> None:
    with contextlib.suppress(OSError):
        if path.read_text().strip() == address:
            path.unlink()
