"""WebSocket bearer auth at the upgrade (codex-source-spec §1.8).

Two modes: a capability token (its SHA-256 is kept, compared in constant time) and an HS256
signed bearer token (JWT: `exp` required, `nbf`/`iss`/`aud` checked with a clock skew). HS256 is
a few lines over `hmac`, so no JWT library is pulled in; only HS256 is accepted, so `alg: none`
and algorithm confusion are impossible by construction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from appserver.transport.auth_flags import AuthArgs, AuthMode

DEFAULT_MAX_CLOCK_SKEW_SECONDS: Final = 30
MIN_SHARED_SECRET_BYTES: Final = 32


class AuthConfigError(Exception):
    """Bad auth flags or secrets: the server refuses to start with this message."""


@attrs.frozen
class CapabilityTokenPolicy:
    digest: bytes

    def check(self, token: str, now: float) -> str | None:
        given = hashlib.sha256(token.encode()).digest()
        return None if hmac.compare_digest(given, self.digest) else "invalid websocket bearer token"


@attrs.frozen
class SignedBearerPolicy:
    secret: bytes = attrs.field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    def check(self, token: str, now: float) -> str | None:
        claims = verify_hs256(token, self.secret)
        if claims is None:
            return "invalid websocket jwt"
        skew = self.max_clock_skew_seconds
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if exp is None:
            return "websocket jwt has no `exp` claim (an expiry is required)"
        if not _is_number(exp):
            return "websocket jwt `exp` claim is not a number"
        if nbf is not None and not _is_number(nbf):
            return "websocket jwt `nbf` claim is not a number"
        assert exp is not None
        if now > exp + skew:
            return "expired websocket jwt"
        if nbf is not None and now < nbf - skew:
            return "websocket jwt is not valid yet"
        if self.issuer is not None and claims.get("iss") != self.issuer:
            return "websocket jwt issuer mismatch"
        if self.audience is not None:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if self.audience not in audiences:
                return "websocket jwt audience mismatch"
        return None


Policy = CapabilityTokenPolicy | SignedBearerPolicy


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64url(text: str) -> bytes:
    """Strict unpadded base64url: one spelling per value (no padding, no `+/`, no stray bits)."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise ValueError("non-canonical base64url")
    return data


def verify_hs256(token: str, secret: bytes) -> dict[str, Any] | None:
    """The claims of a well-formed HS256 JWT whose signature matches, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = orjson.loads(_b64url(parts[0]))
        claims = orjson.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    if type(header) is not dict or header.get("alg") != "HS256" or type(claims) is not dict:
        return None
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    return claims if hmac.compare_digest(signature, expected) else None


def sign_hs256(claims: Mapping[str, Any], secret: bytes) -> str:
    """An HS256 JWT for `claims` (for tests and for operators minting tokens)."""

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    head = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(dict(claims))}"
    signature = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return f"{head}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _absolute(flag: str, value: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        raise AuthConfigError(f"{flag} must be an absolute path")
    return path


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise AuthConfigError(f"failed to read websocket auth secret {path}: {exc}") from exc
    if not secret:
        raise AuthConfigError(f"websocket auth secret {path} must not be empty")
    return secret


def _blank_is_none(value: str | None) -> str | None:
    value = value.strip() if value is not None else None
    return value or None


def load_policy(args: AuthArgs) -> Policy | None:
    """Validate the flags and read the secrets, once, at startup."""
    signed_only = (args.shared_secret_file, args.issuer, args.audience, args.max_clock_skew_seconds)
    if args.mode is None:
        if args.token_file or args.token_sha256 or any(v is not None for v in signed_only):
            raise AuthConfigError(
                "websocket auth flags require `--ws-auth capability-token` or "
                "`--ws-auth signed-bearer-token`"
            )
        return None
    if args.mode is AuthMode.CAPABILITY_TOKEN:
        if any(v is not None for v in signed_only):
            raise AuthConfigError(
                "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and "
                "`--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`"
            )
        if args.token_file and args.token_sha256:
            raise AuthConfigError(
                "`--ws-token-file` and `--ws-token-sha256` are mutually exclusive"
            )
        if args.token_sha256 is not None:
            digest_hex = args.token_sha256.strip().lower()
            if len(digest_hex) != 64 or any(c not in "0123456789abcdef" for c in digest_hex):
                raise AuthConfigError("--ws-token-sha256 must be a 64-character hex SHA-256 digest")
            return CapabilityTokenPolicy(bytes.fromhex(digest_hex))
        if not args.token_file:
            raise AuthConfigError(
                "`--ws-token-file` or `--ws-token-sha256` is required when "
                "`--ws-auth capability-token` is set"
            )
        token = _read_secret(_absolute("--ws-token-file", args.token_file))
        return CapabilityTokenPolicy(hashlib.sha256(token).digest())
    if args.token_file or args.token_sha256:
        raise AuthConfigError(
            "`--ws-token-file` and `--ws-token-sha256` require `--ws-auth capability-token`"
        )
    if not args.shared_secret_file:
        raise AuthConfigError(
            "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set"
        )
    path = _absolute("--ws-shared-secret-file", args.shared_secret_file)
    secret = _read_secret(path)
    if len(secret) < MIN_SHARED_SECRET_BYTES:
        raise AuthConfigError(
            f"signed websocket bearer secret {path} must be at least "
            f"{MIN_SHARED_SECRET_BYTES} bytes"
        )
    skew = args.max_clock_skew_seconds
    return SignedBearerPolicy(
        secret,
        _blank_is_none(args.issuer),
        _blank_is_none(args.audience),
        DEFAULT_MAX_CLOCK_SKEW_SECONDS if skew is None else skew,
    )


def authorizer(
    policy: Policy, clock: Callable[[], float] = time.time
) -> Callable[[Mapping[str, str]], str | None]:
    """`headers -> None | 401 text` for the HTTP front."""

    def authorize(headers: Mapping[str, str]) -> str | None:
        value = headers.get("authorization")
        if value is None:
            return "missing websocket bearer token"
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "invalid authorization header"
        return policy.check(token, clock())

    return authorize
