"""WebSocket bearer auth: flag validation, secrets, the authorizer, HS256 (codex-source-spec §1.8).

Ports `app-server-transport/src/transport/auth.rs` tests (§10.4) by name, plus the authorizer's
header handling and the JWT time, issuer and audience checks. No real clock: every check is given
its `now` (the `clock` of `authorizer`, or `policy.check(token, now)`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.transport.auth import (
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    AuthConfigError,
    CapabilityTokenPolicy,
    Policy,
    SignedBearerPolicy,
    authorizer,
    load_policy,
    sign_hs256,
    verify_hs256,
)
from appserver.transport.auth_flags import AuthArgs, AuthMode

NOW = 1_750_000_000
SECRET = b"0123456789abcdef0123456789abcdef-signed"
TOKEN = "capability-token-for-tests"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()
B64URL_ALPHABET = string.ascii_letters + string.digits + "-_"

CAPABILITY = AuthMode.CAPABILITY_TOKEN
SIGNED = AuthMode.SIGNED_BEARER_TOKEN


def config_error(args: AuthArgs) -> str:
    with pytest.raises(AuthConfigError) as caught:
        load_policy(args)
    return str(caught.value)


def write_file(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def authorize_at(policy: Policy, now: float = NOW) -> Callable[[Mapping[str, str]], str | None]:
    return authorizer(policy, clock=lambda: now)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def signed_policy(**kwargs: Any) -> SignedBearerPolicy:
    return SignedBearerPolicy(SECRET, **kwargs)


def jwt(claims: Mapping[str, Any], secret: bytes = SECRET) -> str:
    return sign_hs256(claims, secret)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# -- §10.4: capability-token flags ---------------------------------------------------------------


def test_capability_token_args_require_token_file_or_hash() -> None:
    message = config_error(AuthArgs(mode=CAPABILITY))
    assert "--ws-token-file" in message
    assert "--ws-token-sha256" in message
    assert message == (
        "`--ws-token-file` or `--ws-token-sha256` is required when "
        "`--ws-auth capability-token` is set"
    )


def test_capability_token_args_accept_token_hash() -> None:
    policy = load_policy(AuthArgs(mode=CAPABILITY, token_sha256=TOKEN_SHA256))
    assert isinstance(policy, CapabilityTokenPolicy)
    assert policy.digest == hashlib.sha256(TOKEN.encode()).digest()
    assert policy.check(TOKEN, NOW) is None


def test_capability_token_hash_is_trimmed_and_case_insensitive() -> None:
    policy = load_policy(AuthArgs(mode=CAPABILITY, token_sha256=f"  {TOKEN_SHA256.upper()}\n"))
    assert isinstance(policy, CapabilityTokenPolicy)
    assert policy.check(TOKEN, NOW) is None


def test_capability_token_args_reject_multiple_token_sources(tmp_path: Path) -> None:
    token_file = write_file(tmp_path, "token", TOKEN.encode())
    message = config_error(
        AuthArgs(mode=CAPABILITY, token_file=token_file, token_sha256=TOKEN_SHA256)
    )
    assert "mutually exclusive" in message


@pytest.mark.parametrize(
    "digest",
    [
        "abc",
        TOKEN_SHA256[:-1],
        TOKEN_SHA256 + "0",
        "g" * 64,
        TOKEN_SHA256[:-1] + "z",
        "",
        "   ",
    ],
)
def test_capability_token_args_reject_malformed_token_hash(digest: str) -> None:
    message = config_error(AuthArgs(mode=CAPABILITY, token_sha256=digest))
    assert "64-character hex" in message
    assert message.startswith("--ws-token-sha256 ")


def test_capability_token_hash_policy_authorizes_matching_bearer_token() -> None:
    policy = load_policy(AuthArgs(mode=CAPABILITY, token_sha256=TOKEN_SHA256))
    assert policy is not None
    authorize = authorize_at(policy)
    assert authorize(bearer(TOKEN)) is None
    assert authorize(bearer(TOKEN + "x")) == "invalid websocket bearer token"
    assert authorize(bearer("another-token")) == "invalid websocket bearer token"


def test_capability_token_file_content_is_trimmed(tmp_path: Path) -> None:
    token_file = write_file(tmp_path, "token", f"  \t{TOKEN}\r\n\n".encode())
    policy = load_policy(AuthArgs(mode=CAPABILITY, token_file=token_file))
    assert isinstance(policy, CapabilityTokenPolicy)
    assert policy.digest == hashlib.sha256(TOKEN.encode()).digest()
    authorize = authorize_at(policy)
    assert authorize(bearer(TOKEN)) is None
    assert authorize(bearer(f"{TOKEN}\n")) is None  # the header token is trimmed as well
    assert authorize(bearer(TOKEN[:-1])) == "invalid websocket bearer token"


def test_capability_token_rejects_signed_bearer_flags(tmp_path: Path) -> None:
    message = config_error(AuthArgs(mode=CAPABILITY, token_sha256=TOKEN_SHA256, issuer="codex"))
    assert message == (
        "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and "
        "`--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`"
    )


# -- §10.4: signed-bearer flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        AuthArgs(shared_secret_file="/secret"),
        AuthArgs(issuer="codex"),
        AuthArgs(audience="appserver"),
        AuthArgs(max_clock_skew_seconds=5),
        AuthArgs(token_file="/token"),
        AuthArgs(token_sha256=TOKEN_SHA256),
    ],
)
def test_signed_bearer_args_require_mode_when_mode_specific_flags_are_set(args: AuthArgs) -> None:
    message = config_error(args)
    assert "websocket auth flags require" in message
    assert message == (
        "websocket auth flags require `--ws-auth capability-token` or "
        "`--ws-auth signed-bearer-token`"
    )


def test_no_auth_flags_mean_no_policy() -> None:
    assert load_policy(AuthArgs()) is None


def test_signed_bearer_rejects_capability_token_flags(tmp_path: Path) -> None:
    secret_file = write_file(tmp_path, "secret", SECRET)
    message = config_error(
        AuthArgs(mode=SIGNED, shared_secret_file=secret_file, token_sha256=TOKEN_SHA256)
    )
    assert message == (
        "`--ws-token-file` and `--ws-token-sha256` require `--ws-auth capability-token`"
    )


def test_signed_bearer_requires_shared_secret_file() -> None:
    message = config_error(AuthArgs(mode=SIGNED, issuer="codex"))
    assert message == (
        "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set"
    )


def test_signed_bearer_args_default_clock_skew_and_trim_optional_claims(tmp_path: Path) -> None:
    secret_file = write_file(tmp_path, "secret", b"  " + SECRET + b"\n")
    policy = load_policy(
        AuthArgs(mode=SIGNED, shared_secret_file=secret_file, issuer="  codex  ", audience="   ")
    )
    assert isinstance(policy, SignedBearerPolicy)
    assert policy.max_clock_skew_seconds == DEFAULT_MAX_CLOCK_SKEW_SECONDS == 30
    assert policy.issuer == "codex"
    assert policy.audience is None
    assert policy.secret == SECRET


def test_signed_bearer_args_keep_explicit_clock_skew_and_audience(tmp_path: Path) -> None:
    secret_file = write_file(tmp_path, "secret", SECRET)
    policy = load_policy(
        AuthArgs(
            mode=SIGNED,
            shared_secret_file=secret_file,
            audience=" appserver ",
            max_clock_skew_seconds=0,
        )
    )
    assert isinstance(policy, SignedBearerPolicy)
    assert policy.max_clock_skew_seconds == 0
    assert policy.audience == "appserver"
    assert policy.issuer is None


def test_validate_signed_bearer_secret_rejects_short_secret(tmp_path: Path) -> None:
    secret_file = write_file(tmp_path, "secret", b"x" * 31 + b"\n")  # 31 bytes once trimmed
    message = config_error(AuthArgs(mode=SIGNED, shared_secret_file=secret_file))
    assert "must be at least 32 bytes" in message
    assert message == f"signed websocket bearer secret {secret_file} must be at least 32 bytes"


def test_signed_bearer_secret_of_exactly_32_bytes_is_accepted(tmp_path: Path) -> None:
    secret_file = write_file(tmp_path, "secret", b"y" * 32)
    policy = load_policy(AuthArgs(mode=SIGNED, shared_secret_file=secret_file))
    assert isinstance(policy, SignedBearerPolicy)
    assert policy.secret == b"y" * 32


# -- secret files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (AuthArgs(mode=CAPABILITY, token_file="token.txt"), "--ws-token-file"),
        (AuthArgs(mode=SIGNED, shared_secret_file="secrets/key"), "--ws-shared-secret-file"),
    ],
)
def test_secret_paths_must_be_absolute(
    args: AuthArgs, flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even when the relative path exists from the current directory.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "token.txt").write_bytes(TOKEN.encode())
    (tmp_path / "secrets" / "key").write_bytes(SECRET)
    assert config_error(args) == f"{flag} must be an absolute path"


@pytest.mark.parametrize("mode", [CAPABILITY, SIGNED])
@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_secret_file_is_reported(tmp_path: Path, mode: AuthMode, kind: str) -> None:
    path = tmp_path / "nope"
    if kind == "directory":
        path.mkdir()
    if mode is CAPABILITY:
        args = AuthArgs(mode=mode, token_file=str(path))
    else:
        args = AuthArgs(mode=mode, shared_secret_file=str(path))
    message = config_error(args)
    assert message.startswith(f"failed to read websocket auth secret {path}: ")


@pytest.mark.parametrize("mode", [CAPABILITY, SIGNED])
@pytest.mark.parametrize("content", [b"", b" \n\t\r\n"])
def test_empty_secret_file_is_rejected(tmp_path: Path, mode: AuthMode, content: bytes) -> None:
    path = write_file(tmp_path, "empty", content)
    if mode is CAPABILITY:
        args = AuthArgs(mode=mode, token_file=path)
    else:
        args = AuthArgs(mode=mode, shared_secret_file=path)
    message = config_error(args)
    assert "must not be empty" in message
    assert message == f"websocket auth secret {path} must not be empty"


# -- the authorizer: the Authorization header ----------------------------------------------------


CAPABILITY_POLICY = CapabilityTokenPolicy(hashlib.sha256(TOKEN.encode()).digest())


@pytest.mark.parametrize("policy", [CAPABILITY_POLICY, signed_policy()])
def test_authorizer_requires_authorization_header(policy: Policy) -> None:
    authorize = authorize_at(policy)
    assert authorize({}) == "missing websocket bearer token"
    assert authorize({"host": "127.0.0.1", "x-token": TOKEN}) == "missing websocket bearer token"


@pytest.mark.parametrize(
    "value",
    [
        "Basic xyz",
        f"Basic {TOKEN}",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "",
        "   ",
        TOKEN,
        f"Token {TOKEN}",
        f"Bearer-{TOKEN}",
    ],
)
@pytest.mark.parametrize("policy", [CAPABILITY_POLICY, signed_policy()])
def test_authorizer_rejects_malformed_authorization_header(policy: Policy, value: str) -> None:
    assert authorize_at(policy)({"authorization": value}) == "invalid authorization header"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_authorizer_scheme_is_case_insensitive(scheme: str) -> None:
    authorize = authorize_at(CAPABILITY_POLICY)
    assert authorize({"authorization": f"{scheme} {TOKEN}"}) is None
    assert authorize({"authorization": f"  {scheme}   {TOKEN}  "}) is None
    assert authorize({"authorization": f"{scheme} wrong"}) == "invalid websocket bearer token"


def test_authorizer_reads_the_clock_for_every_request() -> None:
    now = [NOW]
    authorize = authorizer(signed_policy(max_clock_skew_seconds=0), clock=lambda: now[0])
    token = jwt({"exp": NOW + 10})
    assert authorize(bearer(token)) is None
    now[0] = NOW + 11
    assert authorize(bearer(token)) == "expired websocket jwt"


# -- §10.4: HS256 verification -------------------------------------------------------------------


def test_signed_bearer_token_verification_accepts_valid_token() -> None:
    policy = signed_policy(issuer="codex", audience="appserver")
    claims = {"exp": NOW + 60, "nbf": NOW - 5, "iss": "codex", "aud": "appserver", "sub": "x"}
    token = jwt(claims)
    assert verify_hs256(token, SECRET) == claims
    assert authorize_at(policy)(bearer(token)) is None
    # Without issuer/audience settings, any `iss`/`aud` (or none) is fine.
    assert authorize_at(signed_policy())(bearer(jwt({"exp": NOW + 60, "iss": "x"}))) is None


def test_signed_bearer_token_verification_rejects_tampering() -> None:
    policy = signed_policy()
    token = jwt({"exp": NOW + 60, "sub": "user"})
    header, _, signature = token.split(".")
    forged_claims = b64url_json({"exp": NOW + 3600, "sub": "admin"})
    forged = f"{header}.{forged_claims}.{signature}"
    assert verify_hs256(forged, SECRET) is None
    assert authorize_at(policy)(bearer(forged)) == "invalid websocket jwt"
    # Signed with another secret.
    other = jwt({"exp": NOW + 60}, b"another-secret-of-at-least-32-bytes!")
    assert authorize_at(policy)(bearer(other)) == "invalid websocket jwt"
    # The untampered token is accepted, so the refusals above are about the tampering.
    assert authorize_at(policy)(bearer(token)) is None


def test_signed_bearer_token_verification_accepts_multiple_audiences() -> None:
    policy = signed_policy(audience="appserver")
    authorize = authorize_at(policy)
    assert authorize(bearer(jwt({"exp": NOW + 60, "aud": ["other", "appserver"]}))) is None
    assert authorize(bearer(jwt({"exp": NOW + 60, "aud": ["appserver"]}))) is None
    assert (
        authorize(bearer(jwt({"exp": NOW + 60, "aud": ["other", "third"]})))
        == "websocket jwt audience mismatch"
    )


@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS512", "RS256"])
def test_signed_bearer_token_verification_rejects_alg_none_tokens(alg: str, signature: str) -> None:
    header = b64url_json({"alg": alg, "typ": "JWT"})
    claims = b64url_json({"exp": NOW + 60})
    token = f"{header}.{claims}.{signature}"
    assert verify_hs256(token, SECRET) is None
    assert authorize_at(signed_policy())(bearer(token)) == "invalid websocket jwt"


def test_alg_none_header_with_a_valid_hs256_signature_is_rejected() -> None:
    header = b64url_json({"alg": "none", "typ": "JWT"})
    claims = b64url_json({"exp": NOW + 60})
    mac = hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    token = f"{header}.{claims}.{b64url(mac)}"
    assert authorize_at(signed_policy())(bearer(token)) == "invalid websocket jwt"


@pytest.mark.parametrize("claims", [{}, {"nbf": NOW - 10}, {"exp": None}])
def test_a_jwt_without_exp_is_refused_saying_so(claims: dict[str, Any]) -> None:
    token = jwt(claims)
    assert verify_hs256(token, SECRET) == claims  # well signed: only the claims are wrong
    assert authorize_at(signed_policy())(bearer(token)) == (
        "websocket jwt has no `exp` claim (an expiry is required)"
    )


@pytest.mark.parametrize("claims", [{"exp": str(NOW + 60)}, {"exp": True}, {"exp": [NOW + 60]}])
def test_a_non_numeric_exp_is_refused_saying_so(claims: dict[str, Any]) -> None:
    token = jwt(claims)
    assert authorize_at(signed_policy())(bearer(token)) == (
        "websocket jwt `exp` claim is not a number"
    )


@pytest.mark.parametrize("nbf", ["0", True, {"at": 0}])
def test_non_numeric_nbf_is_invalid(nbf: Any) -> None:
    token = jwt({"exp": NOW + 60, "nbf": nbf})
    assert authorize_at(signed_policy())(bearer(token)) == (
        "websocket jwt `nbf` claim is not a number"
    )


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "..",
        "%%%.%%%.%%%",
        "e30.e30.",  # `{}` header: no alg
        "W10.W10.c2ln",  # `[]` header and claims
    ],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    assert verify_hs256(token, SECRET) is None
    assert authorize_at(signed_policy())(bearer(token)) == "invalid websocket jwt"


def test_padded_base64_parts_are_rejected() -> None:
    header, claims, signature = jwt({"exp": NOW + 60, "pad": "x"}).split(".")
    padded = [part + "=" * (-len(part) % 4) for part in (header, claims, signature)]
    assert any(p.endswith("=") for p in padded)
    assert verify_hs256(".".join(padded), SECRET) is None


# -- expiry, not-before, issuer, audience ------------------------------------------------------


@pytest.mark.parametrize(
    ("exp", "expected"),
    [
        (NOW + 60, None),
        (NOW, None),
        (NOW - 29, None),
        (NOW - 30, None),  # exactly at the edge of the skew: `now > exp + skew` is false
        (NOW - 31, "expired websocket jwt"),
        (NOW - 3600, "expired websocket jwt"),
    ],
)
def test_exp_is_checked_with_clock_skew(exp: int, expected: str | None) -> None:
    policy = signed_policy(max_clock_skew_seconds=30)
    assert authorize_at(policy)(bearer(jwt({"exp": exp}))) == expected
    assert policy.check(jwt({"exp": exp}), NOW) == expected


@pytest.mark.parametrize(
    ("nbf", "expected"),
    [
        (NOW - 60, None),
        (NOW, None),
        (NOW + 29, None),
        (NOW + 30, None),
        (NOW + 31, "websocket jwt is not valid yet"),
        (NOW + 3600, "websocket jwt is not valid yet"),
    ],
)
def test_nbf_is_checked_with_clock_skew(nbf: int, expected: str | None) -> None:
    policy = signed_policy(max_clock_skew_seconds=30)
    assert policy.check(jwt({"exp": NOW + 7200, "nbf": nbf}), NOW) == expected


def test_zero_skew_is_strict() -> None:
    policy = signed_policy(max_clock_skew_seconds=0)
    assert policy.check(jwt({"exp": NOW - 1}), NOW) == "expired websocket jwt"
    assert policy.check(jwt({"exp": NOW + 60, "nbf": NOW + 1}), NOW) == (
        "websocket jwt is not valid yet"
    )
    assert policy.check(jwt({"exp": NOW, "nbf": NOW}), NOW) is None


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"iss": "codex"}, None),
        ({"iss": "someone-else"}, "websocket jwt issuer mismatch"),
        ({"iss": " codex"}, "websocket jwt issuer mismatch"),
        ({"iss": "CODEX"}, "websocket jwt issuer mismatch"),
        ({}, "websocket jwt issuer mismatch"),
        ({"iss": ["codex"]}, "websocket jwt issuer mismatch"),
    ],
)
def test_issuer_must_match_when_configured(claims: dict[str, Any], expected: str | None) -> None:
    policy = signed_policy(issuer="codex")
    assert policy.check(jwt({"exp": NOW + 60, **claims}), NOW) == expected


@pytest.mark.parametrize(
    ("aud", "expected"),
    [
        ("appserver", None),
        (["x", "appserver"], None),
        ("other", "websocket jwt audience mismatch"),
        (["other"], "websocket jwt audience mismatch"),
        ([], "websocket jwt audience mismatch"),
        ("appserver-2", "websocket jwt audience mismatch"),
    ],
)
def test_audience_must_match_when_configured(aud: Any, expected: str | None) -> None:
    policy = signed_policy(audience="appserver")
    assert policy.check(jwt({"exp": NOW + 60, "aud": aud}), NOW) == expected


def test_missing_audience_is_a_mismatch_when_configured() -> None:
    policy = signed_policy(audience="appserver")
    assert policy.check(jwt({"exp": NOW + 60}), NOW) == "websocket jwt audience mismatch"


def test_time_checks_come_before_issuer_and_audience() -> None:
    policy = signed_policy(issuer="codex", audience="appserver", max_clock_skew_seconds=0)
    stale = jwt({"exp": NOW - 1, "iss": "other", "aud": "other"})
    assert policy.check(stale, NOW) == "expired websocket jwt"


# -- property: sign/verify round trip, and the signature is not malleable --------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs",))), children, max_size=4
        )
    ),
    max_leaves=12,
)
claim_sets = st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), json_values, max_size=6
)
# Any character that could be put in place of one: the base64url alphabet, the standard
# base64 extras, padding, and junk.
replacement_chars = st.sampled_from(B64URL_ALPHABET + "+/=*~! \t")


@given(claims=claim_sets, secret=st.binary(min_size=1, max_size=96))
def test_hs256_round_trips_claims(claims: dict[str, Any], secret: bytes) -> None:
    token = sign_hs256(claims, secret)
    assert token.count(".") == 2
    assert "=" not in token
    assert verify_hs256(token, secret) == claims


@given(claims=claim_sets, secret=st.binary(min_size=1, max_size=96), data=st.data())
def test_any_single_character_change_of_the_signature_fails(
    claims: dict[str, Any], secret: bytes, data: st.DataObject
) -> None:
    token = sign_hs256(claims, secret)
    head, _, signature = token.rpartition(".")
    last = len(signature) - 1
    # Biased towards the places where a lax base64 decoder hides a change: the last character
    # (its unused low bits) and `-`/`_` spelled as standard base64 `+`/`/`.
    position = data.draw(st.just(last) | st.integers(0, last), label="position")
    original = signature[position]
    neighbours = [B64URL_ALPHABET[B64URL_ALPHABET.index(original) ^ bit] for bit in (1, 2, 3)]
    replacement = data.draw(
        (st.sampled_from(neighbours) | replacement_chars).filter(lambda c: c != original),
        label="replacement",
    )
    changed = signature[:position] + replacement + signature[position + 1 :]
    assert verify_hs256(f"{head}.{changed}", secret) is None


def test_unused_bits_of_the_last_signature_character_are_not_ignored() -> None:
    """A 43-character base64url HMAC-SHA256 ends in a character with 2 unused bits."""
    token = sign_hs256({"exp": NOW + 60}, SECRET)
    head, _, signature = token.rpartition(".")
    assert len(signature) == 43
    index = B64URL_ALPHABET.index(signature[-1])
    for flipped in (index ^ 1, index ^ 2, index ^ 3):
        changed = signature[:-1] + B64URL_ALPHABET[flipped]
        assert verify_hs256(f"{head}.{changed}", SECRET) is None, changed
        assert authorize_at(signed_policy())(bearer(f"{head}.{changed}")) == (
            "invalid websocket jwt"
        )


def signature_with_url_char_at(position: int) -> tuple[str, str]:
    for n in range(1000):
        head, _, signature = sign_hs256({"exp": NOW + 60, "n": n}, SECRET).rpartition(".")
        if signature[position] in "-_":
            return head, signature
    raise AssertionError(f"no signature with '-' or '_' at {position}")


@pytest.mark.parametrize("position", [0, 20, 41])
def test_standard_base64_characters_are_not_accepted_in_the_signature(position: int) -> None:
    """`+`/`/` are not base64url: a signature spelled with them is not the signature."""
    head, signature = signature_with_url_char_at(position)
    standard = {"-": "+", "_": "/"}[signature[position]]
    changed = signature[:position] + standard + signature[position + 1 :]
    assert verify_hs256(f"{head}.{changed}", SECRET) is None
    assert authorize_at(signed_policy())(bearer(f"{head}.{changed}")) == "invalid websocket jwt"
