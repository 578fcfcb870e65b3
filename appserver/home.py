"""The server home: where it lives and what is in it.

`--home DIR` > `$APPSERVER_HOME` > `~/.appserver`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

HOME_ENV: Final = "APPSERVER_HOME"
CONTROL_DIR_NAME: Final = "app-server-control"
CONTROL_SOCKET_NAME: Final = "app-server-control.sock"
STARTUP_LOCK_NAME: Final = "app-server-startup.lock"
STATE_DB_NAME: Final = "state.sqlite"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    raw = explicit or os.environ.get(HOME_ENV) or Path.home() / ".appserver"
    return Path(os.path.abspath(os.path.expanduser(raw)))


def control_dir(home: Path) -> Path:
    return home / CONTROL_DIR_NAME


def control_socket_path(home: Path) -> Path:
    return control_dir(home) / CONTROL_SOCKET_NAME


def startup_lock_path(home: Path) -> Path:
    return control_dir(home) / STARTUP_LOCK_NAME


def state_db_path(home: Path) -> Path:
    return home / STATE_DB_NAME
