"""Typed params of the `fs/*` and `fuzzyFileSearch*` methods (Codex 0.169 schema)."""

from __future__ import annotations

import attrs

from appserver.protocol.absolute_path import AbsolutePath


@attrs.frozen
class FsPathParams:
    """fs/readFile, fs/getMetadata, fs/readDirectory."""

    path: AbsolutePath


@attrs.frozen
class FsWriteFileParams:
    path: AbsolutePath
    data_base64: str


@attrs.frozen
class FsCreateDirectoryParams:
    path: AbsolutePath
    recursive: bool = True


@attrs.frozen
class FsRemoveParams:
    path: AbsolutePath
    recursive: bool = True
    force: bool = True


@attrs.frozen
class FsCopyParams:
    source_path: AbsolutePath
    destination_path: AbsolutePath
    recursive: bool = False


@attrs.frozen
class FsWatchParams:
    path: AbsolutePath
    watch_id: str


@attrs.frozen
class FsUnwatchParams:
    watch_id: str


@attrs.frozen
class FuzzyFileSearchParams:
    query: str
    roots: list[str]
    cancellation_token: str | None = None


@attrs.frozen
class FuzzyFileSearchSessionStartParams:
    session_id: str
    roots: list[str]


@attrs.frozen
class FuzzyFileSearchSessionUpdateParams:
    session_id: str
    query: str


@attrs.frozen
class FuzzyFileSearchSessionStopParams:
    session_id: str
