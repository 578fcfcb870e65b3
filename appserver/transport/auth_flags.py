"""The `--ws-*` auth flags as given; checked and turned into a policy by `auth` (ws:// only, so
the other transports start without it)."""

from __future__ import annotations

import enum

import attrs


class AuthMode(enum.Enum):
    CAPABILITY_TOKEN = "capability-token"
    SIGNED_BEARER_TOKEN = "signed-bearer-token"


@attrs.frozen
class AuthArgs:
    """The `--ws-*` flags as given."""

    mode: AuthMode | None = None
    token_file: str | None = None
    token_sha256: str | None = None
    shared_secret_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: int | None = None
