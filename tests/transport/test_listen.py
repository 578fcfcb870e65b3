"""`--listen` URLs: codex-source-spec §1.1 (rules and exact error strings), the §10.1, §10.2 and
§10.13 upstream tests, and the codex-observed §1 validation cases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appserver.cli import serve_parser
from appserver.transport.listen import (
    DEFAULT_LISTEN_URL,
    ListenUrlError,
    Off,
    Stdio,
    Unix,
    WebSocket,
    parse_listen_url,
)

UNSUPPORTED = (
    "unsupported --listen URL `{}`; expected `stdio://`, `unix://`, `unix://PATH`, "
    "`ws://IP:PORT`, or `off`"
)
BAD_WEBSOCKET = "invalid websocket --listen URL `{}`; expected `ws://IP:PORT`"


def listen_error(url: str) -> str:
    with pytest.raises(ListenUrlError) as info:
        parse_listen_url(url, Path("/cwd"))
    return str(info.value)


# -- §10.1 and §10.2 ------------------------------------------------------------------------


def test_listen_off_parses_as_off_transport() -> None:
    assert parse_listen_url("off") == Off()


def test_listen_unix_socket_parses_as_unix_socket_transport() -> None:
    # `Unix(None)` is the home's default control socket, resolved where the home is known.
    assert parse_listen_url("unix://") == Unix(None)


def test_listen_unix_socket_accepts_absolute_custom_path() -> None:
    assert parse_listen_url("unix:///tmp/codex.sock") == Unix(Path("/tmp/codex.sock"))


def test_listen_unix_socket_accepts_relative_custom_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = parse_listen_url("unix://codex.sock")
    assert target == Unix(Path(os.getcwd()) / "codex.sock")
    assert isinstance(target, Unix)
    assert target.path is not None
    assert target.path.is_absolute()


def test_relative_unix_path_is_resolved_against_the_given_cwd() -> None:
    assert parse_listen_url("unix://codex.sock", Path("/srv/app")) == Unix(
        Path("/srv/app/codex.sock")
    )
    assert parse_listen_url("unix://sub/../x.sock", Path("/srv/app")) == Unix(
        Path("/srv/app/x.sock")
    )
    assert parse_listen_url("unix:///abs.sock", Path("/srv/app")) == Unix(Path("/abs.sock"))


# -- §10.13: the cli parses `--listen` ------------------------------------------------------


def parse_cli_listen(url: str) -> object:
    return serve_parser().parse_args(["--listen", url]).listen


def test_app_server_listen_websocket_url_parses() -> None:
    assert parse_cli_listen("ws://127.0.0.1:3456") == WebSocket("127.0.0.1", 3456)


def test_app_server_listen_stdio_url_parses() -> None:
    assert parse_cli_listen("stdio://") == Stdio()


def test_app_server_listen_unix_socket_url_parses() -> None:
    assert parse_cli_listen("unix://") == Unix(None)


def test_app_server_listen_unix_socket_path_parses() -> None:
    assert parse_cli_listen("unix:///tmp/codex-app-server.sock") == Unix(
        Path("/tmp/codex-app-server.sock")
    )


def test_app_server_listen_off_parses() -> None:
    assert parse_cli_listen("off") == Off()


def test_app_server_listen_invalid_url_fails_to_parse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_cli_listen("http://foo")
    assert info.value.code == 2  # clap's usage error code
    assert UNSUPPORTED.format("http://foo") in capsys.readouterr().err


def test_default_listen_url_is_stdio() -> None:
    assert DEFAULT_LISTEN_URL == "stdio://"
    assert parse_listen_url(DEFAULT_LISTEN_URL) == Stdio()


# -- exact error strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "wss://x",
        "wss://127.0.0.1:80",
        "http://foo",
        "tcp://x",
        "unix:rel",
        "unix:/tmp/x.sock",
        "stdio:",
        "stdio:///",
        "STDIO://",
        "OFF",
        "off ",
        "",
        "ws:/127.0.0.1:80",
        "127.0.0.1:80",
    ],
)
def test_unsupported_urls(url: str) -> None:
    assert listen_error(url) == UNSUPPORTED.format(url)


@pytest.mark.parametrize(
    "url",
    [
        "ws://localhost:1",
        "ws://127.0.0.1",
        "ws://127.0.0.1:",
        "ws://",
        "ws://:80",
        "ws://127.0.0.1:65536",
        "ws://127.0.0.1:-1",
        "ws://127.0.0.1:+80",
        "ws://127.0.0.1:8 0",
        "ws://127.0.0.1:80/",
        "ws://127.0.0.1:80/rpc",
        "ws://127.0.0.1:٨٠",
        "ws://127.1:80",
        "ws://127.000.0.1:80",
        "ws://::1:8080",
        "ws://[::1]",
        "ws://[::1]:",
        "ws://[::1]8080",
        "ws://[127.0.0.1]:80",
        "ws://[localhost]:80",
        "ws://example.com:80",
    ],
)
def test_invalid_websocket_urls(url: str) -> None:
    assert listen_error(url) == BAD_WEBSOCKET.format(url)


# -- accepted WebSocket addresses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("ws://127.0.0.1:8080", "127.0.0.1", 8080),
        ("ws://127.0.0.1:0", "127.0.0.1", 0),
        ("ws://0.0.0.0:65535", "0.0.0.0", 65535),
        ("ws://[::1]:8080", "::1", 8080),
        ("ws://[::]:1", "::", 1),
        ("ws://[0:0:0:0:0:0:0:1]:2", "::1", 2),
        ("ws://127.0.0.1:080", "127.0.0.1", 80),
    ],
)
def test_websocket_urls(url: str, host: str, port: int) -> None:
    assert parse_listen_url(url) == WebSocket(host, port)


def test_websocket_loopback_and_display() -> None:
    v4 = parse_listen_url("ws://127.0.0.1:0")
    v6 = parse_listen_url("ws://[::1]:8080")
    anywhere = parse_listen_url("ws://0.0.0.0:9")
    assert isinstance(v4, WebSocket)
    assert isinstance(v6, WebSocket)
    assert isinstance(anywhere, WebSocket)
    assert v4.is_loopback
    assert v6.is_loopback
    assert not anywhere.is_loopback
    assert v4.display(43210) == "127.0.0.1:43210"
    assert v6.display() == "[::1]:8080"
    assert anywhere.display() == "0.0.0.0:9"
