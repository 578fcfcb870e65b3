"""`AbsolutePathBuf` as Codex reads it: an absolute path, normalized lexically on input.

Codex refuses a relative (or empty) path while decoding params, so the client gets
`-32600 Invalid request: AbsolutePathBuf deserialized without a base path`; `.`, `..` and
repeated slashes are resolved without touching the filesystem (`/a/link/../b` is `/a/b`
whatever `link` is), so a path names the same thing whether or not it exists.
"""

from __future__ import annotations

import posixpath
from typing import Any

from appserver.wire.converter import WireTypeError, converter

NOT_ABSOLUTE_MESSAGE = "AbsolutePathBuf deserialized without a base path"


class AbsolutePath(str):
    """A normalized absolute path (a `str`, so it goes on the wire as itself)."""

    __slots__ = ()


def absolute_path(raw: str) -> AbsolutePath:
    """`raw` normalized, or ValueError with Codex's text when it is not absolute."""
    if not raw.startswith("/"):
        raise ValueError(NOT_ABSOLUTE_MESSAGE)
    normalized = posixpath.normpath(raw)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")  # POSIX keeps a leading `//`; Codex does not
    return AbsolutePath(normalized)


def _structure(value: Any, _: Any) -> AbsolutePath:
    if type(value) is not str:
        raise WireTypeError(value, "path string")
    return absolute_path(value)


converter.register_structure_hook(AbsolutePath, _structure)
