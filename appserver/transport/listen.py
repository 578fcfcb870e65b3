"""`--listen` URLs, parsed exactly as Codex's `AppServerTransport::from_listen_url`."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Final

import attrs

DEFAULT_LISTEN_URL: Final = "stdio://"


class ListenUrlError(ValueError):
    pass


@attrs.frozen
class Stdio:
    pass


@attrs.frozen
class Unix:
    #: None means the home's default control socket.
    path: Path | None


@attrs.frozen
class WebSocket:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def display(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port if port is None else port}"


@attrs.frozen
class Off:
    pass


ListenTarget = Stdio | Unix | WebSocket | Off

_UNSUPPORTED = (
    "unsupported --listen URL `{url}`; expected `stdio://`, `unix://`, `unix://PATH`, "
    "`ws://IP:PORT`, or `off`"
)
_BAD_WEBSOCKET = "invalid websocket --listen URL `{url}`; expected `ws://IP:PORT`"


def parse_listen_url(url: str, cwd: Path | None = None) -> ListenTarget:
    if url == "stdio://":
        return Stdio()
    if url.startswith("unix://"):
        rest = url[len("unix://") :]
        if not rest:
            return Unix(None)
        return Unix(Path(os.path.abspath(Path(cwd or Path.cwd()) / rest)))
    if url == "off":
        return Off()
    if url.startswith("ws://"):
        return _parse_socket_addr(url, url[len("ws://") :])
    raise ListenUrlError(_UNSUPPORTED.format(url=url))


def _parse_socket_addr(url: str, text: str) -> WebSocket:
    """Rust `SocketAddr`: `IPv4:PORT` or `[IPv6]:PORT`, never a hostname."""
    error = ListenUrlError(_BAD_WEBSOCKET.format(url=url))
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        version = 6
    else:
        host, sep, port = text.rpartition(":")
        version = 4
    if not sep or not port.isdigit() or not port.isascii() or int(port) > 65535:
        raise error
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise error from None
    if address.version != version or (version == 6 and "%" in host):
        raise error
    return WebSocket(str(address), int(port))
