"""`fs/watch`: inotify watches, debounced per watch, told only to the connection that watches.

One inotify descriptor serves the whole server (created at the first watch, read by one task
with `trio.lowlevel.wait_readable`, so no thread per watch). As in Codex a watch is not
recursive: a directory reports its direct children (and itself), anything else is watched
through its parent directory and reports its own path, so a file that does not exist yet, or
is replaced by a rename (as editors save), is seen. Paths that change within
`DEBOUNCE_SECONDS` of the first change go out as one `fs/changed` with sorted unique paths.

Bounds: `MAX_WATCHES_PER_CONNECTION` watches per connection (more is `-32600`), and at most
`MAX_PENDING_PATHS` distinct paths per notification: past that the batch collapses to the
watched path itself ("something here changed"); a kernel queue overflow does the same for
every watch. `fs/unwatch` returns only once no notification of that watch can follow, and a
connection's watches end with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from appserver.fs.operations import is_temporary_name, os_error_text
from appserver.router import Router
from appserver.wire.errors import RpcError
from appserver.wire.messages import Notification

if TYPE_CHECKING:
    from inotify_simple import INotify  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS: Final = 0.2
MAX_WATCHES_PER_CONNECTION: Final = 1024
MAX_PENDING_PATHS: Final = 1024

# inotify(7) event bits (linux/inotify.h).
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_MASK_ADD: Final = 0x20000000
WATCH_MASK: Final = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)


@attrs.define(eq=False)
class _Watch:
    connection_id: int
    watch_id: str
    path: str
    #: The directory inotify watches: `path` itself, or its parent.
    directory: str
    #: Set when `path` is not a directory: only events naming this child count.
    child: str | None
    pending: set[str] = attrs.Factory(set)
    collapsed: bool = False
    scheduled: bool = False
    closed: bool = False
    sending: trio.Lock = attrs.Factory(trio.Lock)

    def changed_path(self, name: str) -> str | None:
        if self.child is None:
            return os.path.join(self.directory, name) if name else self.path
        return self.path if name == self.child else None


class FileWatches:
    def __init__(self, router: Router, nursery: trio.Nursery) -> None:
        self._router = router
        self._nursery = nursery
        self._inotify: INotify | None = None
        self._watches: dict[tuple[int, str], _Watch] = {}
        self._by_descriptor: dict[int, set[_Watch]] = {}
        self._descriptor_of: dict[str, int] = {}
        self._hooked: list[Callable[[int], None]] | None = None

    def follow_connections(self, closed_hooks: list[Callable[[int], None]]) -> None:
        """Drop a connection's watches when it closes (hooked once, at the first watch)."""
        if self._hooked is not closed_hooks:
            closed_hooks.append(self.connection_closed)
            self._hooked = closed_hooks

    # -- requests ----------------------------------------------------------------------------

    async def watch(self, connection_id: int, watch_id: str, path: str) -> None:
        key = (connection_id, watch_id)
        if key in self._watches:
            raise RpcError.invalid_request(f"watchId already exists: {watch_id}")
        if sum(1 for c, _ in self._watches if c == connection_id) >= MAX_WATCHES_PER_CONNECTION:
            raise RpcError.invalid_request(
                f"too many fs watches on this connection (at most {MAX_WATCHES_PER_CONNECTION})"
            )
        is_directory = await trio.to_thread.run_sync(os.path.isdir, path)
        directory, child = (path, None) if is_directory else os.path.split(path)
        if key in self._watches:  # the same id raced in while we looked at the path
            raise RpcError.invalid_request(f"watchId already exists: {watch_id}")
        watch = _Watch(connection_id, watch_id, path, directory, child)
        descriptor = self._add_descriptor(directory)
        self._watches[key] = watch
        self._by_descriptor.setdefault(descriptor, set()).add(watch)

    async def unwatch(self, connection_id: int, watch_id: str) -> None:
        watch = self._watches.pop((connection_id, watch_id), None)
        if watch is None:
            return
        self._close(watch)
        async with watch.sending:  # a notification being written finishes before the reply
            pass

    def connection_closed(self, connection_id: int) -> None:
        for key in [key for key in self._watches if key[0] == connection_id]:
            self._close(self._watches.pop(key))

    # -- inotify -----------------------------------------------------------------------------

    def _add_descriptor(self, directory: str) -> int:
        inotify = self._inotify
        if inotify is None:
            from inotify_simple import INotify

            try:
                inotify = self._inotify = INotify(nonblocking=True)
            except OSError as exc:
                raise RpcError.internal(f"cannot start the file watcher: {exc}") from None
            self._nursery.start_soon(self._read_events, inotify)
        try:
            descriptor: int = inotify.add_watch(directory, WATCH_MASK | IN_MASK_ADD)
        except OSError as exc:
            raise RpcError.internal(os_error_text(exc)) from None
        self._descriptor_of[directory] = descriptor
        return descriptor

    def _close(self, watch: _Watch) -> None:
        watch.closed = True
        descriptor = self._descriptor_of.get(watch.directory)
        if descriptor is None:
            return
        sharing = self._by_descriptor.get(descriptor, set())
        sharing.discard(watch)
        if not sharing:
            self._by_descriptor.pop(descriptor, None)
            del self._descriptor_of[watch.directory]
            if self._inotify is not None:
                with contextlib.suppress(OSError):  # already gone with its directory
                    self._inotify.rm_watch(descriptor)

    async def _read_events(self, inotify: INotify) -> None:
        try:
            while True:
                await trio.lowlevel.wait_readable(inotify.fileno())
                for event in inotify.read(timeout=0):
                    self._dispatch(event.wd, event.mask, event.name)
        finally:
            self._inotify = None
            self._descriptor_of.clear()
            self._by_descriptor.clear()
            inotify.close()

    def _dispatch(self, descriptor: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            log.warning("fs/watch: the kernel dropped events; reporting every watch as changed")
            for watch in list(self._watches.values()):
                self._note(watch, watch.path, collapse=True)
            return
        watches = self._by_descriptor.get(descriptor, ())
        if name and is_temporary_name(name):
            watches = ()  # our own write in progress: its rename reports the real name
        for watch in list(watches):
            changed = watch.changed_path(name)
            if changed is not None:
                self._note(watch, changed)
        if mask & IN_IGNORED:  # the watched directory is gone; inotify dropped the watch
            for watch in self._by_descriptor.pop(descriptor, ()):
                self._descriptor_of.pop(watch.directory, None)

    def _note(self, watch: _Watch, path: str, *, collapse: bool = False) -> None:
        if watch.closed:
            return
        if watch.collapsed:
            pass
        elif collapse or (path not in watch.pending and len(watch.pending) >= MAX_PENDING_PATHS):
            watch.pending, watch.collapsed = {watch.path}, True
        else:
            watch.pending.add(path)
        if not watch.scheduled:
            watch.scheduled = True
            self._nursery.start_soon(self._flush, watch)

    async def _flush(self, watch: _Watch) -> None:
        await trio.sleep(DEBOUNCE_SECONDS)
        paths = sorted(watch.pending)
        watch.pending, watch.collapsed, watch.scheduled = set(), False, False
        async with watch.sending:
            if watch.closed or not paths:
                return
            params: dict[str, Any] = {"watchId": watch.watch_id, "changedPaths": paths}
            await self._router.send(watch.connection_id, Notification("fs/changed", params))
