"""The HTTP side, through the official `openai` SDK (its async client runs on trio via
httpx/anyio): requests, auth, retries of 429/5xx with bounded exponential backoff that honours
`Retry-After`, and errors. The SDK is imported on first use, in a worker thread, so neither
startup nor other connections pay for its ~1 s import.

Requests go through the SDK's generic `post` with a plain JSON body and come back as the raw
HTTP response: the SDK's typed `create` walks the whole body against its TypedDicts first (12 ms
against 2 ms for a system prompt, three tool schemas and some history), and its typed chunks
cost fifty times more CPU per token than decoding the bytes with `sse.SseDecoder` and orjson.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import orjson
import trio

from appserver.app.agents.base import TurnFailed
from appserver.app.agents.openai.settings import Settings

if TYPE_CHECKING:
    import openai

#: Codex's `request_max_retries` and `stream_max_retries` defaults.
MAX_RETRIES: Final = 4
STREAM_MAX_RETRIES: Final = 5

_sdk: Any = None
#: The HTTP response class of the SDK's HTTP client (`httpx2` in openai 3, `httpx` before).
_response_type: Any = None


def _import_sdk() -> tuple[Any, Any]:
    sdk = importlib.import_module("openai")
    try:
        http = importlib.import_module("httpx2")
    except ImportError:
        http = importlib.import_module("httpx")
    return sdk, http.Response


async def load_sdk() -> Any:
    """The `openai` module, imported once, off the event loop."""
    global _sdk, _response_type
    if _sdk is None:
        _sdk, _response_type = await trio.to_thread.run_sync(_import_sdk)
    return _sdk


class Endpoint:
    """One OpenAI-compatible endpoint (its connection pool is reused across turns)."""

    def __init__(
        self,
        settings: Settings,
        max_retries: int = MAX_RETRIES,
        stream_retries: int = STREAM_MAX_RETRIES,
    ) -> None:
        self.settings = settings
        self.max_retries = max_retries
        self.stream_retries = stream_retries
        self._client: openai.AsyncOpenAI | None = None

    async def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            sdk = await load_sdk()
            self._client = sdk.AsyncOpenAI(
                base_url=self.settings.base_url,
                api_key=self.settings.api_key,
                max_retries=self.max_retries,
            )
        return self._client

    async def models(self) -> list[str]:
        """`GET {base}/models`: the ids, in the endpoint's order."""
        client = await self.client()
        try:
            # Not retried: `model/list` should answer promptly when the endpoint is down.
            page = await client.with_options(max_retries=0).models.list()
            return [model.id async for model in page]
        except Exception as exc:
            raise self.failure(exc) from exc

    @asynccontextmanager
    async def stream(self, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[bytes]]:
        """POST a streaming request (retried as the SDK does until the response starts);
        yields the response body's byte chunks. Leaving the block closes the connection."""
        client = await self.client()
        path = "/responses" if self.settings.wire_api == "responses" else "/chat/completions"
        try:
            # The body is encoded here (orjson), not by the SDK (json with its own defaults).
            response = await client.post(
                path,
                content=orjson.dumps(body),
                options={"headers": {"Content-Type": "application/json"}},
                cast_to=_response_type,
                stream=True,
            )
            try:
                yield response.aiter_bytes()
            finally:
                with trio.CancelScope(shield=True):
                    await response.aclose()
        except TurnFailed:
            raise
        except Exception as exc:
            sdk = await load_sdk()
            if isinstance(exc, sdk.OpenAIError) or _is_http_error(exc):
                raise self.failure(exc) from exc
            raise

    def failure(self, exc: BaseException) -> TurnFailed:
        """What the turn's `error` says for an SDK or transport error."""
        sdk = _sdk
        status = getattr(exc, "status_code", None)
        detail = _message(exc)
        where = self.settings.base_url
        if sdk is not None and isinstance(exc, sdk.AuthenticationError):
            key = f" (set {self.settings.env_key})" if self.settings.env_key else ""
            return TurnFailed(
                f"unauthorized: {where} refused the API key{key}: {detail}",
                codex_error_info="unauthorized",
            )
        if isinstance(status, int):
            info: Any
            if status == 429 or status >= 500:
                info = {"responseTooManyFailedAttempts": {"httpStatusCode": status}}
                text = f"{where} answered {status} after {self.max_retries + 1} attempts: {detail}"
            else:
                info = (
                    "badRequest"
                    if status == 400
                    else {"httpConnectionFailed": {"httpStatusCode": status}}
                )
                text = f"{where} answered {status}: {detail}"
            return TurnFailed(text, codex_error_info=info)
        if sdk is not None and isinstance(exc, sdk.APIConnectionError):
            return TurnFailed(
                f"cannot reach {where}: {detail}",
                codex_error_info={"httpConnectionFailed": {"httpStatusCode": None}},
            )
        return TurnFailed(
            f"the stream from {where} broke: {detail}",
            codex_error_info={"responseStreamDisconnected": {"httpStatusCode": None}},
        )


def _is_http_error(exc: BaseException) -> bool:
    """A transport error raised while reading the body (httpx is imported by the SDK)."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc) or type(exc).__name__
