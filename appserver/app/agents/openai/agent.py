"""`OpenAIAgent`: each turn samples the model, runs the tools it calls, sends their results
back, and samples again until the model answers without tool calls.

Text streams as `item/agentMessage/delta`, reasoning (`reasoning_content`/`reasoning` deltas,
Responses reasoning deltas) as a `reasoning` item's content; the stream's `usage` is reported
for `thread/tokenUsage/updated`. Interrupting cancels the HTTP stream, which closes its
connection at once. A side turn (`outputSchema`) is sampled without tools, with
`response_format: json_schema`, and its answer is the model's JSON once it satisfies the schema.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson
import trio

from appserver.app.agents.base import MessageStream, ReasoningStream, Turn, TurnFailed
from appserver.app.agents.openai import settings as settings_module
from appserver.app.agents.openai.client import MAX_RETRIES, STREAM_MAX_RETRIES, Endpoint
from appserver.app.agents.openai.conversation import Message, history_messages, user_content
from appserver.app.agents.openai.instructions import (
    Signature,
    docs_signature,
    signed_instructions,
)
from appserver.app.agents.openai.sse import SseDecoder
from appserver.app.agents.openai.tools import TOOLS, call_tool
from appserver.app.agents.openai.wire import (
    ChatParser,
    ResponsesParser,
    StreamError,
    chat_request,
    responses_request,
)
from appserver.config import Config

log = logging.getLogger(__name__)

#: Model requests in one turn before it fails (a model stuck calling tools).
MAX_SAMPLES: Final = 200
DONE: Final = b"[DONE]"
INSTRUCTIONS_CACHE: Final = 256
#: Codex's compaction prompt (codex-rs/core/templates/compact/prompt.md).
COMPACT_PROMPT: Final = """You are performing a CONTEXT CHECKPOINT COMPACTION. Create a handoff \
summary for another LLM that will resume the task.

Include:
- Current progress and key decisions made
- Important context, constraints, or user preferences
- What remains to be done (clear next steps)
- Any critical data, examples, or references needed to continue

Be concise, structured, and focused on helping the next LLM seamlessly continue the work."""


#: First pause before requesting a broken stream again (doubling, at most 5 s).
STREAM_RETRY_DELAY: Final = 0.2


class _BrokeEarly(Exception):
    """The stream broke before anything of it reached the client: it may be requested again."""

    def __init__(self, failure: TurnFailed) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _strip_fence(text: str) -> str:
    """JSON some models wrap in a Markdown code fence."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        stripped = stripped.removeprefix("json").strip()
    return stripped


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and 0 <= value <= 100 else default


def _is_disconnect(failure: TurnFailed) -> bool:
    info = failure.codex_error_info
    return isinstance(info, dict) and "responseStreamDisconnected" in info


class OpenAIAgent:
    name = "openai"
    display_name = "OpenAI-compatible model"
    description = (
        "A coding agent on any OpenAI-compatible endpoint (OPENAI_BASE_URL): shell, "
        "apply_patch and update_plan tools behind approvals."
    )

    def __init__(self, home: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self._env = env
        self._endpoints: dict[tuple[settings_module.Settings, int, int], Endpoint] = {}
        self._models: dict[str, list[str]] = {}
        self._config: Config | None = None
        #: Instructions per thread, built at the thread's first turn in this process (as Codex
        #: reads AGENTS.md once per session).
        self._instructions: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        #: The latest instructions built per (cwd, approval policy), with the signature of the
        #: AGENTS.md files they were built from: a new thread there reuses them while that
        #: signature (a few `stat` calls) is unchanged, instead of a worker-thread hop.
        self._built: OrderedDict[tuple[str, str], tuple[Signature, str]] = OrderedDict()

    def configure(self, config: Config) -> None:
        """Called by the server before serving: its live configuration (`HOME/config.toml`
        and the `-c` overrides; `config/value/write` and `config/batchWrite` update it)."""
        self.home = config.home
        self._config = config

    # -- configuration -----------------------------------------------------------------------

    async def _effective_config(self) -> dict[str, Any]:
        if self._config is not None:
            return self._config.effective()  # in memory: no I/O
        return await trio.to_thread.run_sync(settings_module.read_config, self.home, {})

    async def endpoint(self) -> Endpoint:
        return self._endpoint_for(await self._effective_config())

    def _endpoint_for(self, config: dict[str, Any]) -> Endpoint:
        settings = settings_module.resolve(
            config, os.environ if self._env is None else self._env, frozenset({self.name})
        )
        provider = (config.get("model_providers") or {}).get(settings.provider) or {}
        retries = _count(provider.get("request_max_retries"), MAX_RETRIES)
        stream_retries = _count(provider.get("stream_max_retries"), STREAM_MAX_RETRIES)
        key = (settings, retries, stream_retries)
        if key not in self._endpoints:
            self._endpoints[key] = Endpoint(settings, retries, stream_retries)
        return self._endpoints[key]

    # -- models ------------------------------------------------------------------------------

    async def list_models(self) -> tuple[list[str], str | None]:
        """The endpoint's model ids and the default one (the configured model, else the
        first). Raises TurnFailed when the endpoint cannot be asked."""
        endpoint = await self.endpoint()
        models = await endpoint.models()
        self._models[endpoint.settings.base_url] = models
        default = endpoint.settings.model or (models[0] if models else None)
        if endpoint.settings.model and endpoint.settings.model not in models:
            models.insert(0, endpoint.settings.model)
        return models, default

    async def _model_for(self, turn: Turn, endpoint: Endpoint) -> str:
        model = turn.model
        if model and model != self.name:
            return model
        if endpoint.settings.model:
            return endpoint.settings.model
        models = self._models.get(endpoint.settings.base_url) or await endpoint.models()
        self._models[endpoint.settings.base_url] = models
        if not models:
            raise TurnFailed(f"{endpoint.settings.base_url} lists no models; set `model`")
        return models[0]

    # -- the turn ----------------------------------------------------------------------------

    async def instructions(self, turn: Turn) -> str:
        policy = turn.approval_policy
        key = (turn.thread_id, turn.cwd, policy if isinstance(policy, str) else "on-request")
        instructions = self._instructions.get(key)
        if instructions is None:
            instructions = await self._current_instructions(key[1], key[2])
            self._instructions[key] = instructions
            if len(self._instructions) > INSTRUCTIONS_CACHE:
                self._instructions.popitem(last=False)
        return instructions

    async def _current_instructions(self, cwd: str, policy: str) -> str:
        place = (cwd, policy)
        built = self._built.get(place)
        if built is not None:
            try:
                unchanged = docs_signature(cwd) == built[0]
            except (OSError, RuntimeError):
                unchanged = False
            if unchanged:
                self._built.move_to_end(place)
                return built[1]
        signature, instructions = await trio.to_thread.run_sync(signed_instructions, cwd, policy)
        self._built[place] = (signature, instructions)
        self._built.move_to_end(place)
        if len(self._built) > INSTRUCTIONS_CACHE:
            self._built.popitem(last=False)
        return instructions

    async def run_turn(self, turn: Turn) -> None:
        endpoint = await self.endpoint()
        model = await self._model_for(turn, endpoint)
        instructions = await self.instructions(turn)
        conversation = history_messages(turn.history, turn.compaction_summary, turn.injected_items)
        conversation.append({"role": "user", "content": user_content(turn.input)})
        schema = turn.output_schema
        build = responses_request if endpoint.settings.wire_api == "responses" else chat_request
        if schema is not None:
            body = build(model, instructions, conversation, (), schema)
            await self._answer_side_turn(turn, endpoint, body)
            return
        for _ in range(MAX_SAMPLES):
            body = build(model, instructions, conversation, TOOLS, None)
            parser, text = await self._sample(turn, endpoint, body)
            if parser.usage is not None:
                turn.report_usage(parser.usage.input_tokens, parser.usage.output_tokens)
            calls = parser.tool_calls
            assistant: Message = {"role": "assistant", "content": text or None}
            if calls:
                assistant["tool_calls"] = [
                    {
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in calls
                ]
            conversation.append(assistant)
            for call in calls:
                result = await call_tool(turn, call.name, call.arguments)
                conversation.append(
                    {"role": "tool", "tool_call_id": call.call_id, "content": result}
                )
            steered = turn.pending_input()
            if steered:
                conversation.append({"role": "user", "content": user_content(steered)})
            if not calls and not steered:
                return
        raise TurnFailed(f"the model made {MAX_SAMPLES} requests in one turn without finishing")

    async def _answer_side_turn(self, turn: Turn, endpoint: Endpoint, body: dict[str, Any]) -> None:
        """A side turn (`outputSchema`): the model's JSON, checked against the schema, is the
        answer (`Turn.answer_json`); anything else fails the turn."""
        parser, text = await self._sample(turn, endpoint, body, show=False)
        if parser.usage is not None:
            turn.report_usage(parser.usage.input_tokens, parser.usage.output_tokens)
        try:
            value = orjson.loads(_strip_fence(text))
        except orjson.JSONDecodeError as exc:
            raise TurnFailed(f"the model did not answer with JSON: {text[:200]!r}") from exc
        await turn.answer_json(value)

    async def compact(self, turn: Turn) -> str:
        """`thread/compact/start` (`/compact`): the model summarizes the conversation with
        Codex's compaction prompt; the summary stands for it in later turns."""
        endpoint = await self.endpoint()
        model = await self._model_for(turn, endpoint)
        instructions = await self.instructions(turn)
        conversation = history_messages(turn.history, turn.compaction_summary, turn.injected_items)
        conversation.append({"role": "user", "content": COMPACT_PROMPT})
        build = responses_request if endpoint.settings.wire_api == "responses" else chat_request
        body = build(model, instructions, conversation, (), None)
        parser, summary = await self._sample(turn, endpoint, body, show=False)
        if parser.usage is not None:
            turn.report_usage(parser.usage.input_tokens, parser.usage.output_tokens)
        if not summary.strip():
            raise TurnFailed("the model returned an empty summary")
        return summary

    async def _sample(
        self, turn: Turn, endpoint: Endpoint, body: dict[str, Any], *, show: bool = True
    ) -> tuple[ChatParser | ResponsesParser, str]:
        """One streamed model response; a stream that breaks before anything of it was shown
        is requested again (`stream_max_retries` times, as Codex)."""
        for attempt in range(endpoint.stream_retries + 1):
            try:
                return await self._sample_once(turn, endpoint, body, show)
            except _BrokeEarly as broke:
                if attempt == endpoint.stream_retries:
                    raise broke.failure from None
                log.warning("openai agent: %s; retrying", broke.failure.message)
                await trio.sleep(min(STREAM_RETRY_DELAY * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    async def _sample_once(
        self, turn: Turn, endpoint: Endpoint, body: dict[str, Any], show: bool
    ) -> tuple[ChatParser | ResponsesParser, str]:
        """Deltas go out as they arrive (with `show`; otherwise the text is only collected)."""
        parser: ChatParser | ResponsesParser = (
            ResponsesParser() if endpoint.settings.wire_api == "responses" else ChatParser()
        )
        decoder = SseDecoder()
        message: MessageStream | None = None
        reasoning: ReasoningStream | None = None
        texts: list[str] = []
        try:
            async with endpoint.stream(body) as chunks:
                async for data in chunks:
                    for payload in decoder.feed(data):
                        if payload == DONE:
                            continue
                        try:
                            event = orjson.loads(payload)
                        except orjson.JSONDecodeError:
                            log.warning("openai agent: skipping a malformed event: %.200r", payload)
                            continue
                        text, thinking = parser.feed(event)
                        if not show:
                            if text:
                                texts.append(text)
                            continue
                        if thinking:
                            # Reasoning and text alternate as separate items, in order.
                            if message is not None:
                                texts.append(await message.finish())
                                message = None
                            if reasoning is None:
                                reasoning = turn.reasoning()
                            await reasoning.content_delta(thinking)
                        if text:
                            if reasoning is not None:
                                await reasoning.finish()
                                reasoning = None
                            if message is None:
                                message = turn.message()
                            await message.delta(text)
        except StreamError as exc:
            raise TurnFailed(
                f"the model endpoint reported an error: {exc}", codex_error_info="other"
            ) from exc
        except TurnFailed as exc:
            shown = message is not None or reasoning is not None or (show and bool(texts))
            if not shown and _is_disconnect(exc):
                raise _BrokeEarly(exc) from exc
            raise
        if reasoning is not None:
            await reasoning.finish()
        if message is not None:
            texts.append(await message.finish())
        return parser, "".join(texts)
