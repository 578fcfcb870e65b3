"""`initialize`: params, result and the userAgent Codex clients parse."""

from __future__ import annotations

import functools
import os
import platform
import sys
from typing import Final

import attrs

from appserver.wire.converter import OPTIONAL

#: The Codex release whose protocol we speak. Clients read it from `userAgent` and gate
#: features on it (openai-codex needs >= 0.151.0 for some turn fields).
CODEX_COMPAT_VERSION: Final = "0.169.0"
DEFAULT_ORIGINATOR: Final = "appserver"
#: Clients that must not become the originator (Codex `NON_ORIGINATING_CLIENT_NAMES`).
NON_ORIGINATING_CLIENT_NAMES: Final = frozenset({"codex_app_server_daemon", "codex-backend"})
ORIGINATOR_OVERRIDE_ENV: Final = ("APPSERVER_ORIGINATOR", "CODEX_INTERNAL_ORIGINATOR_OVERRIDE")


@attrs.frozen
class ClientInfoParams:
    name: str
    version: str
    title: str | None = attrs.field(default=None, metadata=OPTIONAL)


@attrs.frozen
class InitializeCapabilities:
    experimental_api: bool = False
    request_attestation: bool = False
    opt_out_notification_methods: list[str] | None = attrs.field(default=None, metadata=OPTIONAL)


@attrs.frozen
class InitializeParams:
    client_info: ClientInfoParams
    capabilities: InitializeCapabilities | None = attrs.field(default=None, metadata=OPTIONAL)


@attrs.frozen
class InitializeResponse:
    user_agent: str
    codex_home: str
    platform_family: str
    platform_os: str


def is_valid_header_value(text: str) -> bool:
    """What Rust `http::HeaderValue::from_str` accepts: no control characters but tab."""
    return all(ch == "\t" or (ch >= " " and ch != "\x7f") for ch in text)


@functools.cache
def _os_description() -> str:
    try:
        release = platform.freedesktop_os_release()
        name, version = release.get("NAME", "Linux"), release.get("VERSION_ID", "")
    except OSError:
        name, version = platform.system() or "unknown", platform.release()
    return f"{name.split(' ')[0]} {version}".strip() + f"; {platform.machine() or 'unknown'}"


def platform_family() -> str:
    return "windows" if os.name == "nt" else "unix"


def platform_os() -> str:
    return {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)


def originator_override() -> str | None:
    for name in ORIGINATOR_OVERRIDE_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def user_agent(originator: str, client: ClientInfoParams | None, server_version: str) -> str:
    """`<originator>/<codex version> (<os> <ver>; <arch>) appserver/<ver> (<client>; <ver>)`."""
    text = f"{originator}/{CODEX_COMPAT_VERSION} ({_os_description()}) appserver/{server_version}"
    if client is not None:
        text += f" ({client.name}; {client.version})"
    return text
