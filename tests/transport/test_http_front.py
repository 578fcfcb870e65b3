"""The HTTP front: health endpoints, Origin refusal, plain GETs, auth, and upgrade hand-off."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import trio
import trio.testing

from appserver.transport.http_front import MAX_HEAD_BYTES, FrontPolicy, front

UPGRADE = (
    b"GET /rpc HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)
WS_POLICY = FrontPolicy(frozenset({"/healthz", "/readyz"}), reject_origin=True, name="ws")


async def exchange(request: bytes, policy: FrontPolicy) -> tuple[bytes, trio.abc.Stream | None]:
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(request)
    result = await front(server, policy)
    await server.aclose()
    response = b""
    while chunk := await client.receive_some():
        response += chunk
    return response, result


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/readyz?x=1"])
async def test_health_endpoints_answer_200(path: str) -> None:
    response, upgraded = await exchange(
        f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), WS_POLICY
    )
    assert status(response) == 200
    assert b"content-length: 0" in response.lower()
    assert upgraded is None


async def test_health_head_and_http10() -> None:
    response, _ = await exchange(b"HEAD /healthz HTTP/1.0\r\n\r\n", WS_POLICY)
    assert status(response) == 200


async def test_health_post_is_405_with_allow() -> None:
    response, _ = await exchange(
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", WS_POLICY
    )
    assert status(response) == 405
    assert b"allow: GET,HEAD" in response


@pytest.mark.parametrize("request_line", [b"GET /healthz", b"GET /rpc"])
async def test_any_request_with_origin_is_403(request_line: bytes) -> None:
    head = request_line + b" HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
    if request_line.endswith(b"/rpc"):
        head = UPGRADE + b"Origin: https://evil.example\r\n"
    response, upgraded = await exchange(head + b"\r\n", WS_POLICY)
    assert status(response) == 403
    assert upgraded is None


async def test_plain_get_elsewhere_is_400() -> None:
    """/metrics too, where no metrics are configured (the control socket)."""
    response, _ = await exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", WS_POLICY)
    assert status(response) == 400
    assert response.endswith(b"Connection header did not include 'upgrade'")


async def test_garbage_is_closed_without_an_upgrade() -> None:
    with trio.fail_after(1):  # refused at the first line, not after the head timeout
        response, upgraded = await exchange(b'{"id":1,"method":"initialize"}\n', FrontPolicy())
    assert upgraded is None
    assert response == b""  # closed without bytes, as Codex does


async def test_unix_policy_has_no_health_and_accepts_origin() -> None:
    _, upgraded = await exchange(UPGRADE + b"Origin: https://x\r\n\r\n", FrontPolicy())
    assert upgraded is not None
    response, _ = await exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", FrontPolicy())
    assert status(response) == 400


async def test_authorizer_refusal_is_401_with_its_text() -> None:
    def authorize(headers: Mapping[str, str]) -> str | None:
        return (
            None
            if headers.get("authorization") == "Bearer ok"
            else "missing websocket bearer token"
        )

    policy = FrontPolicy(authorize=authorize)
    response, upgraded = await exchange(UPGRADE + b"\r\n", policy)
    assert status(response) == 401
    assert response.endswith(b"missing websocket bearer token")
    assert upgraded is None
    _, upgraded = await exchange(UPGRADE + b"Authorization: Bearer ok\r\n\r\n", policy)
    assert upgraded is not None


async def test_upgrade_replays_every_byte_already_read() -> None:
    early_frame = b"\x81\x85\x00\x00\x00\x00hello"
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(UPGRADE + b"\r\n" + early_frame)
    upgraded = await front(server, FrontPolicy())
    assert upgraded is not None
    replayed = b""
    while len(replayed) < len(UPGRADE) + 2 + len(early_frame):
        replayed += await upgraded.receive_some()
    assert replayed == UPGRADE + b"\r\n" + early_frame


def bearer_ok(headers: Mapping[str, str]) -> str | None:
    return None if headers.get("authorization") == "Bearer ok" else "invalid websocket bearer token"


async def test_a_100_kb_authorization_header_gets_a_401_not_a_reset() -> None:
    """Issue 13 item 9; Codex 0.169 answers it 401 `invalid websocket bearer token` too."""
    header = b"Authorization: Bearer " + b"a" * 100_000 + b"\r\n"
    response, upgraded = await exchange(
        UPGRADE + header + b"\r\n", FrontPolicy(authorize=bearer_ok)
    )
    assert status(response) == 401
    assert response.endswith(b"invalid websocket bearer token")
    assert upgraded is None


async def test_a_head_over_the_limit_gets_a_431_not_a_reset() -> None:
    header = b"X-Padding: " + b"a" * (2 * MAX_HEAD_BYTES) + b"\r\n"
    response, upgraded = await exchange(
        UPGRADE + header + b"\r\n", FrontPolicy(authorize=bearer_ok)
    )
    assert status(response) == 431
    assert upgraded is None


@pytest.mark.parametrize(
    "headers",
    [
        b"Authorization: Bearer ok\r\nAuthorization: Bearer ok\r\n",
        b"Authorization: Bearer ok\r\nAuthorization: Bearer other\r\n",
        b"Authorization: Bearer other\r\nauthorization: Bearer ok\r\n",
    ],
)
async def test_two_authorization_headers_are_refused(headers: bytes) -> None:
    """Codex takes the first; which one a proxy in between took is anyone's guess: refuse."""
    consulted: list[Mapping[str, str]] = []

    def authorize(seen: Mapping[str, str]) -> str | None:
        consulted.append(seen)
        return bearer_ok(seen)

    policy = FrontPolicy(authorize=authorize)
    response, upgraded = await exchange(UPGRADE + headers + b"\r\n", policy)
    assert status(response) == 401
    assert response.endswith(b"multiple authorization headers")
    assert upgraded is None
    assert consulted == []


async def test_repeated_authorization_is_irrelevant_without_auth() -> None:
    headers = b"Authorization: a\r\nAuthorization: b\r\n"
    _, upgraded = await exchange(UPGRADE + headers + b"\r\n", FrontPolicy())
    assert upgraded is not None


# -- GET /metrics (issue 13 item 15) ---------------------------------------------------------

METRICS_TEXT = "# HELP appserver_turns_running Turns running now.\n"
METRICS_POLICY = FrontPolicy(
    frozenset({"/healthz"}), reject_origin=True, metrics=lambda: METRICS_TEXT.encode()
)


async def test_metrics_are_served_as_prometheus_text() -> None:
    response, upgraded = await exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", METRICS_POLICY)
    assert status(response) == 200
    assert b"content-type: text/plain; version=0.0.4; charset=utf-8" in response.lower()
    assert response.endswith(METRICS_TEXT.encode())
    assert upgraded is None


async def test_metrics_follow_the_origin_and_auth_rules() -> None:
    origin = b"GET /metrics HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n"
    response, _ = await exchange(origin, METRICS_POLICY)
    assert status(response) == 403
    policy = FrontPolicy(authorize=bearer_ok, metrics=lambda: METRICS_TEXT.encode())
    response, _ = await exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", policy)
    assert status(response) == 401
    assert response.endswith(b"invalid websocket bearer token")
    authorized = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\n\r\n"
    response, _ = await exchange(authorized, policy)
    assert status(response) == 200
    post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    response, _ = await exchange(post, policy)
    assert status(response) == 405
