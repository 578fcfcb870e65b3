"""The real `appserver --listen ws://IP:PORT` process (codex-source-spec §1.6, §1.8, §10.9).

Servers and clients are the shared ones (`tests.e2e.transports`: `spawn_server("ws", …)` waits
for the banner `  listening on: ws://HOST:PORT`, `open_client` is trio-websocket's). Refusals
(401/403/400/405) are checked with hand-written HTTP on `Server.open_stream`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from appserver.transport.auth import sign_hs256
from tests.e2e.transports import (
    TIMEOUT,
    Client,
    ClientClosed,
    Server,
    WebSocketClient,
    open_client,
    request_message,
    run_to_exit,
    spawn_server,
)

pytestmark = pytest.mark.e2e

#: How long a connection must stay quiet to count as "received nothing".
SILENCE = 0.25

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LOOPBACK_NOTE = "  note: binds localhost only (use SSH port-forwarding for remote access)"
NON_LOOPBACK_NOTE = "  note: websocket auth is required for non-localhost listeners"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


# -- raw HTTP ------------------------------------------------------------------------------------


@attrs.frozen
class HttpResponse:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


async def http_exchange(server: Server, request: bytes) -> HttpResponse:
    """Send one request; read the response head, then (unless 101) the body up to EOF."""
    stream = await server.open_stream()
    with trio.fail_after(TIMEOUT):
        async with stream:
            await stream.send_all(request)
            data = bytearray()
            while (end := data.find(b"\r\n\r\n")) < 0:
                chunk = await stream.receive_some()
                assert chunk, f"connection closed before a response head: {bytes(data)!r}"
                data += chunk
            head, body = bytes(data[:end]).decode("latin-1"), bytearray(data[end + 4 :])
            status_line, *header_lines = head.split("\r\n")
            version, status, reason = status_line.split(" ", 2)
            assert version == "HTTP/1.1", status_line
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status != "101":
                while chunk := await stream.receive_some():
                    body += chunk
    response = HttpResponse(int(status), reason, headers, bytes(body))
    if response.status != 101 and not request.startswith(b"HEAD "):
        assert int(headers["content-length"]) == len(response.body), response
    return response


def http_request(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def raw_upgrade(server: Server, *headers: str, path: str = "/") -> HttpResponse:
    """A hand-written WebSocket upgrade; a 101 must carry the right Sec-WebSocket-Accept."""
    key = base64.b64encode(os.urandom(16))
    request = http_request(
        "GET",
        path,
        "Connection: Upgrade",
        "Upgrade: websocket",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        *headers,
    )
    response = await http_exchange(server, request)
    if response.status == 101:
        accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest()).decode()
        assert response.headers["sec-websocket-accept"] == accept, response
        assert response.headers["upgrade"].lower() == "websocket", response
    return response


def assert_refused(response: HttpResponse, status: int, text: str | None = None) -> None:
    assert response.status == status, response
    if text is not None:
        assert response.text == text, response


# -- WebSocket JSON-RPC ---------------------------------------------------------------------------


def connect(
    server: Server, *, token: str | None = None, path: str = "/"
) -> AbstractAsyncContextManager[Client]:
    headers = [("Authorization", f"Bearer {token}")] if token is not None else []
    return open_client("ws", server, path=path, headers=headers)


def initialize_params(**capabilities: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"clientInfo": {"name": "e2e_ws_client", "version": "1.0.0"}}
    if capabilities:
        params["capabilities"] = capabilities
    return params


async def call(client: Client, message: dict[str, Any]) -> dict[str, Any]:
    """Send a message; the very next one from the server."""
    await client.send(message)
    return await client.next_message()


def initialize_request(request_id: int, **capabilities: Any) -> dict[str, Any]:
    return request_message(request_id, "initialize", initialize_params(**capabilities))


async def initialize(client: Client, request_id: int = 1, **capabilities: Any) -> None:
    """`initialize`, whose reply is the next message (no `initialized` follows)."""
    reply = await call(client, initialize_request(request_id, **capabilities))
    assert reply["id"] == request_id, reply
    assert "error" not in reply, reply
    assert reply["result"]["userAgent"].startswith("e2e_ws_client/"), reply


# -- routing --------------------------------------------------------------------------------------


async def test_websocket_transport_routes_per_connection_handshake_and_responses(
    home: Path,
) -> None:
    async with spawn_server("ws", home) as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert LOOPBACK_NOTE in server.stderr_text.splitlines()
        async with connect(server) as first, connect(server) as second:
            reply = await call(first, initialize_request(1, experimentalApi=True))
            assert reply["id"] == 1
            assert "userAgent" in reply["result"]
            await second.assert_silent(SILENCE)

            refused = await call(second, {"id": 2, "method": "windowsSandbox/readiness"})
            assert refused["id"] == 2
            assert refused["error"]["message"] == "Not initialized"
            assert "result" not in refused
            await first.assert_silent(SILENCE)

            await initialize(second, 3, experimentalApi=True)
            await first.assert_silent(SILENCE)

            # The same id in flight on both connections at once: each gets its own answer.
            for client, value in ((first, "from-first"), (second, "from-second")):
                await client.send(
                    {"id": 77, "method": "mock/experimentalMethod", "params": {"value": value}}
                )
            assert await first.next_message() == {"id": 77, "result": {"echoed": "from-first"}}
            assert await second.next_message() == {"id": 77, "result": {"echoed": "from-second"}}
            await first.assert_silent(SILENCE)
            await second.assert_silent(SILENCE)


async def test_binary_frames_are_dropped_and_pings_answered(home: Path) -> None:
    async with spawn_server("ws", home) as server, connect(server) as client:
        assert isinstance(client, WebSocketClient)
        await initialize(client)
        with trio.fail_after(TIMEOUT):
            await client.connection.ping(b"before-binary")
        await client.connection.send_message(b'{"id": 5, "method": "windowsSandbox/readiness"}')
        await client.connection.send_message(b"\x00\xffnot json")
        with trio.fail_after(TIMEOUT):
            await client.connection.ping(b"after-binary")
        # The next message is the reply to this request: the binary frames got no answer.
        reply = await call(client, {"id": 6, "method": "windowsSandbox/readiness"})
        assert reply == {"id": 6, "result": {"status": "notConfigured"}}
        await client.assert_silent(SILENCE)


# -- plain HTTP on the same listener ---------------------------------------------------------------


async def test_websocket_transport_serves_health_endpoints_on_same_listener(
    home: Path,
) -> None:
    async with spawn_server("ws", home) as server:
        for method in ("GET", "HEAD"):
            for path in ("/readyz", "/healthz", "/healthz?probe=1"):
                response = await http_exchange(server, http_request(method, path))
                assert response.status == 200, (method, path, response)
                assert response.headers["content-length"] == "0", (method, path, response)
                assert response.body == b"", (method, path, response)
        async with connect(server) as client:
            await initialize(client)


async def test_websocket_upgrade_works_on_any_path(home: Path) -> None:
    async with spawn_server("ws", home) as server:
        assert (await raw_upgrade(server, path="/rpc")).status == 101
        async with connect(server, path="/some/path?x=1") as client:
            await initialize(client)


async def test_websocket_transport_rejects_browser_origin_without_auth(home: Path) -> None:
    async with spawn_server("ws", home) as server:
        assert_refused(await raw_upgrade(server, "Origin: https://evil.example"), 403)
        assert_refused(await raw_upgrade(server, "Origin: http://127.0.0.1"), 403)
        response = await http_exchange(
            server, http_request("GET", "/healthz", "Origin: https://evil.example")
        )
        assert_refused(response, 403)
        # The same upgrade without an Origin header is accepted.
        assert (await raw_upgrade(server)).status == 101


async def test_plain_get_without_upgrade_is_400(home: Path) -> None:
    async with spawn_server("ws", home) as server:
        # /metrics is served (issue 13 item 15), see test_hardening.
        for path in ("/", "/health", "/stats"):
            response = await http_exchange(server, http_request("GET", path))
            assert_refused(response, 400, "Connection header did not include 'upgrade'")
            assert response.headers["content-type"].startswith("text/plain"), response


async def test_refused_head_requests_get_a_bodiless_response_and_the_server_keeps_serving(
    home: Path,
) -> None:
    """A HEAD answered with an error status has no body; it must not take the server down."""
    async with spawn_server("ws", home) as server:
        for request, status in (
            (http_request("HEAD", "/"), 400),
            (http_request("HEAD", "/healthz", "Origin: https://evil.example"), 403),
        ):
            response = await http_exchange(server, request)
            assert response.status == status, (request, response)
            assert response.body == b"", (request, response)
            assert server.returncode is None, server.stderr_text
        assert (await http_exchange(server, http_request("GET", "/healthz"))).status == 200
        async with connect(server) as client:
            await initialize(client)


async def test_post_to_health_endpoint_is_405(home: Path) -> None:
    async with spawn_server("ws", home) as server:
        for path in ("/healthz", "/readyz"):
            response = await http_exchange(server, http_request("POST", path))
            assert_refused(response, 405)
            assert response.headers["allow"] == "GET,HEAD", response


# -- auth ------------------------------------------------------------------------------------------


def signed_bearer_flags(secret_file: Path) -> tuple[str, ...]:
    return ("--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(secret_file))


@pytest.mark.parametrize("source", ["token-file", "token-sha256"])
async def test_websocket_transport_rejects_missing_and_invalid_capability_tokens(
    home: Path, tmp_path: Path, source: str
) -> None:
    token = "capability-" + base64.urlsafe_b64encode(os.urandom(24)).decode()
    if source == "token-file":
        token_file = tmp_path / "ws-token"
        token_file.write_text(f"{token}\n")
        flags = ("--ws-token-file", str(token_file))
    else:
        flags = ("--ws-token-sha256", hashlib.sha256(token.encode()).hexdigest())
    async with spawn_server(
        "ws", home, "--ws-auth", "capability-token", *flags, listen="ws://0.0.0.0:0"
    ) as server:
        assert server.host == "0.0.0.0"
        assert NON_LOOPBACK_NOTE in server.stderr_text.splitlines()

        assert_refused(await raw_upgrade(server), 401, "missing websocket bearer token")
        assert_refused(
            await raw_upgrade(server, path=f"/?token={token}"),
            401,
            "missing websocket bearer token",
        )
        assert_refused(
            await raw_upgrade(server, "Authorization: Bearer wrong-token"),
            401,
            "invalid websocket bearer token",
        )
        assert_refused(
            await raw_upgrade(server, f"Authorization: Basic {token}"),
            401,
            "invalid authorization header",
        )
        assert_refused(
            await raw_upgrade(server, "Authorization: Bearer "), 401, "invalid authorization header"
        )
        # Health endpoints need no token.
        assert (await http_exchange(server, http_request("GET", "/healthz"))).status == 200
        # The right token, with the scheme in any case.
        assert (await raw_upgrade(server, f"Authorization: bearer {token}")).status == 101
        async with connect(server, token=token) as client:
            await initialize(client)


async def test_websocket_transport_verifies_signed_short_lived_bearer_tokens(
    home: Path, tmp_path: Path
) -> None:
    secret = os.urandom(24).hex().encode()  # 48 bytes
    secret_file = tmp_path / "ws-secret"
    secret_file.write_bytes(secret + b"\n")
    now = int(time.time())
    good = {"iss": "codex-e2e", "aud": "appserver-e2e", "exp": now + 300}
    other_secret = os.urandom(24).hex().encode()
    refused = {
        "expired": (sign_hs256({**good, "exp": now - 60}, secret), "expired websocket jwt"),
        "malformed": ("not-a-jwt", "invalid websocket jwt"),
        "not yet valid": (
            sign_hs256({**good, "nbf": now + 60}, secret),
            "websocket jwt is not valid yet",
        ),
        "wrong issuer": (
            sign_hs256({**good, "iss": "someone-else"}, secret),
            "websocket jwt issuer mismatch",
        ),
        "wrong audience": (
            sign_hs256({**good, "aud": "another-service"}, secret),
            "websocket jwt audience mismatch",
        ),
        "wrong audience list": (
            sign_hs256({**good, "aud": ["a", "b"]}, secret),
            "websocket jwt audience mismatch",
        ),
        "wrong signature": (sign_hs256(good, other_secret), "invalid websocket jwt"),
        "missing exp": (
            sign_hs256({"iss": "codex-e2e", "aud": "appserver-e2e"}, secret),
            "websocket jwt has no `exp` claim (an expiry is required)",
        ),
    }
    async with spawn_server(
        "ws",
        home,
        *signed_bearer_flags(secret_file),
        "--ws-issuer",
        "codex-e2e",
        "--ws-audience",
        "appserver-e2e",
        "--ws-max-clock-skew-seconds",
        "1",
    ) as server:
        for case, (token, text) in refused.items():
            response = await raw_upgrade(server, f"Authorization: Bearer {token}")
            assert (response.status, response.text) == (401, text), case
        assert_refused(await raw_upgrade(server), 401, "missing websocket bearer token")

        async with connect(server, token=sign_hs256(good, secret)) as client:
            await initialize(client)
        multi = sign_hs256({**good, "aud": ["other", "appserver-e2e"]}, secret)
        async with connect(server, token=multi) as client:
            await initialize(client)


# -- startup ---------------------------------------------------------------------------------------


async def test_websocket_transport_rejects_short_signed_bearer_secret_configuration(
    home: Path, tmp_path: Path
) -> None:
    secret_file = tmp_path / "short-secret"
    secret_file.write_bytes(b"s" * 31 + b"\n")
    result = await run_to_exit(
        "ws", home, *signed_bearer_flags(secret_file), listen="ws://127.0.0.1:0"
    )
    stderr = result.stderr.decode()
    assert result.returncode != 0, stderr
    assert "must be at least 32 bytes" in stderr
    assert "listening on:" not in stderr


async def test_websocket_transport_rejects_unauthenticated_non_loopback_startup(
    home: Path,
) -> None:
    result = await run_to_exit("ws", home, listen="ws://0.0.0.0:0")
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "refusing to start non-loopback websocket listener" in stderr
    assert (
        "Error: refusing to start non-loopback websocket listener 0.0.0.0:0 without auth; "
        "configure `--ws-auth capability-token` or `--ws-auth signed-bearer-token`"
    ) in stderr.splitlines()
    assert "listening on:" not in stderr


async def test_websocket_listen_url_must_not_be_a_hostname(home: Path) -> None:
    result = await run_to_exit("ws", home, listen="ws://localhost:1")
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.splitlines()[-1] == (
        "appserver: error: argument --listen: invalid websocket --listen URL "
        "`ws://localhost:1`; expected `ws://IP:PORT`"
    )


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback (::1) here")
async def test_websocket_listens_on_ipv6_loopback(home: Path) -> None:
    async with spawn_server("ws", home, listen="ws://[::1]:0") as server:
        assert server.host == "::1"
        assert f"  listening on: ws://[::1]:{server.port}" in server.stderr_text.splitlines()
        assert LOOPBACK_NOTE in server.stderr_text.splitlines()
        assert (await http_exchange(server, http_request("GET", "/readyz"))).status == 200
        async with connect(server) as client:
            await initialize(client)


async def test_sigterm_disconnects_clients_and_exits_zero(home: Path) -> None:
    async with spawn_server("ws", home) as server, connect(server) as client:
        await initialize(client)
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0, server.stderr_text
        with trio.fail_after(TIMEOUT), pytest.raises(ClientClosed):
            await client.next_message()
