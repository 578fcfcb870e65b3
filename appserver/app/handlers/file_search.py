"""`fuzzyFileSearch` and the experimental `fuzzyFileSearch/session{Start,Update,Stop}`.

The search itself is `appserver.fs.search_sessions.FileSearches`; session notifications
(`fuzzyFileSearch/sessionUpdated`, `.../sessionCompleted`) follow the reply of the request
that caused them and go only to the session's connection.
"""

from __future__ import annotations

from typing import Any

from appserver.app.threads import Threads
from appserver.fs.search_sessions import FileSearches
from appserver.processor import RequestContext
from appserver.protocol.fs import (
    FuzzyFileSearchParams,
    FuzzyFileSearchSessionStartParams,
    FuzzyFileSearchSessionStopParams,
    FuzzyFileSearchSessionUpdateParams,
)
from appserver.registry import Registry


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method
    searches = FileSearches(threads.router, threads.turn_nursery)

    @method("fuzzyFileSearch", FuzzyFileSearchParams)
    async def fuzzy_file_search(ctx: RequestContext, params: FuzzyFileSearchParams) -> Any:
        files = await searches.search(params.query, params.roots, params.cancellation_token)
        return {"files": files}

    @method("fuzzyFileSearch/sessionStart", FuzzyFileSearchSessionStartParams, experimental=True)
    def session_start(ctx: RequestContext, params: FuzzyFileSearchSessionStartParams) -> Any:
        searches.follow_connections(ctx.processor.closed_hooks)
        searches.start(ctx.connection_id, params.session_id, params.roots)
        connection_id, session_id = ctx.connection_id, params.session_id

        async def load() -> None:
            await searches.load(connection_id, session_id)

        ctx.after_reply(load)
        return {}

    @method("fuzzyFileSearch/sessionUpdate", FuzzyFileSearchSessionUpdateParams, experimental=True)
    def session_update(ctx: RequestContext, params: FuzzyFileSearchSessionUpdateParams) -> Any:
        session = searches.update(ctx.connection_id, params.session_id, params.query)
        query = params.query

        async def run() -> None:
            await searches.run_update(session, query)

        ctx.after_reply(run)
        return {}

    @method("fuzzyFileSearch/sessionStop", FuzzyFileSearchSessionStopParams, experimental=True)
    def session_stop(ctx: RequestContext, params: FuzzyFileSearchSessionStopParams) -> Any:
        searches.stop(ctx.connection_id, params.session_id)
        return {}
