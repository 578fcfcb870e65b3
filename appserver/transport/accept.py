"""The accept loop for socket listeners (instead of `trio.serve_listeners`).

When the process runs out of file descriptors, `accept` fails with EMFILE (or ENFILE,
ENOBUFS, ENOMEM) until some close. trio's loop logs a traceback for every retry; this one logs
one warning when such an episode starts and one line when accepting works again, retrying every
`ACCEPT_RETRY_SECONDS` in between. Any other accept error ends the listener, as in trio.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, NoReturn, TypeVar

import trio

log = logging.getLogger(__name__)

ACCEPT_RETRY_SECONDS: Final = 0.1
CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

S = TypeVar("S", bound=trio.abc.AsyncResource)


async def serve_listeners(
    handler: Callable[[S], Awaitable[object]],
    listeners: Sequence[trio.abc.Listener[S]],
    handler_nursery: trio.Nursery,
) -> NoReturn:
    """Accept on every listener forever; each connection runs `handler` in `handler_nursery`."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, handler, handler_nursery)
    raise AssertionError("accept loops never return")  # pragma: no cover


async def _accept_loop(
    listener: trio.abc.Listener[S],
    handler: Callable[[S], Awaitable[object]],
    handler_nursery: trio.Nursery,
) -> None:
    refused = 0
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in CAPACITY_ERRNOS:
                    raise
                if not refused:
                    log.warning(
                        "accept failed with %s (%s): not accepting connections until resources "
                        "free up; retrying every %ss",
                        errno.errorcode.get(exc.errno, exc.errno),
                        os.strerror(exc.errno),
                        ACCEPT_RETRY_SECONDS,
                    )
                refused += 1
                await trio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            if refused:
                log.info("accepting connections again after %d failed attempt(s)", refused)
                refused = 0
            handler_nursery.start_soon(handler, stream)
