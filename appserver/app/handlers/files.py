"""`fs/*`: read, write, list, inspect, create, remove, copy and watch host files.

Every path is absolute (`AbsolutePath`, normalized while the params are decoded); the blocking
work runs in a worker thread (`appserver.fs.operations`), never on the event loop. `fs/watch`
and `fs/unwatch` are answered by the server's `FileWatches` (appserver.fs.watch): `fs/changed`
goes only to the connection that asked, and its watches end when it goes away.
"""

from __future__ import annotations

import base64
from typing import Any

import trio

from appserver.app.threads import Threads
from appserver.fs import operations
from appserver.fs.watch import FileWatches
from appserver.processor import RequestContext
from appserver.protocol.fs import (
    FsCopyParams,
    FsCreateDirectoryParams,
    FsPathParams,
    FsRemoveParams,
    FsUnwatchParams,
    FsWatchParams,
    FsWriteFileParams,
)
from appserver.registry import Registry


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method
    watches = FileWatches(threads.router, threads.turn_nursery)

    @method("fs/readFile", FsPathParams)
    async def read_file(ctx: RequestContext, params: FsPathParams) -> dict[str, Any]:
        data = await trio.to_thread.run_sync(operations.read_file, params.path)
        return {"dataBase64": base64.b64encode(data).decode("ascii")}

    @method("fs/writeFile", FsWriteFileParams)
    async def write_file(ctx: RequestContext, params: FsWriteFileParams) -> dict[str, Any]:
        await trio.to_thread.run_sync(operations.write_file, params.path, params.data_base64)
        return {}

    @method("fs/createDirectory", FsCreateDirectoryParams)
    async def create_directory(
        ctx: RequestContext, params: FsCreateDirectoryParams
    ) -> dict[str, Any]:
        await trio.to_thread.run_sync(operations.create_directory, params.path, params.recursive)
        return {}

    @method("fs/getMetadata", FsPathParams)
    async def get_metadata(ctx: RequestContext, params: FsPathParams) -> dict[str, Any]:
        return await trio.to_thread.run_sync(operations.get_metadata, params.path)

    @method("fs/readDirectory", FsPathParams)
    async def read_directory(ctx: RequestContext, params: FsPathParams) -> dict[str, Any]:
        entries = await trio.to_thread.run_sync(operations.read_directory, params.path)
        return {"entries": entries}

    @method("fs/remove", FsRemoveParams)
    async def remove(ctx: RequestContext, params: FsRemoveParams) -> dict[str, Any]:
        await trio.to_thread.run_sync(
            operations.remove, params.path, params.recursive, params.force
        )
        return {}

    @method("fs/copy", FsCopyParams)
    async def copy(ctx: RequestContext, params: FsCopyParams) -> dict[str, Any]:
        await trio.to_thread.run_sync(
            operations.copy, params.source_path, params.destination_path, params.recursive
        )
        return {}

    @method("fs/watch", FsWatchParams)
    async def watch(ctx: RequestContext, params: FsWatchParams) -> dict[str, Any]:
        watches.follow_connections(ctx.processor.closed_hooks)
        await watches.watch(ctx.connection_id, params.watch_id, params.path)
        return {"path": params.path}

    @method("fs/unwatch", FsUnwatchParams)
    async def unwatch(ctx: RequestContext, params: FsUnwatchParams) -> dict[str, Any]:
        await watches.unwatch(ctx.connection_id, params.watch_id)
        return {}
