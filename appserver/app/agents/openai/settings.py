"""Where the OpenAI agent sends its requests: base URL, API key, default model, wire API.

Codex's rules: `model_provider` (default `openai`) names a provider; `[model_providers.<id>]`
in `HOME/config.toml` sets its `base_url`, `env_key` (the environment variable holding the API
key) and `wire_api` (`chat` or `responses`). The built-in `openai` provider reads
`OPENAI_BASE_URL` and `OPENAI_API_KEY`; `ollama` and `lmstudio` point at their local ports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from appserver.config import Config, ConfigError, deep_merge

log = logging.getLogger(__name__)

OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
#: Sent when no key is configured: local servers (Ollama, vLLM, llama.cpp) ignore it; the
#: SDK refuses an empty one.
NO_KEY: Final = "no-key"

BUILT_IN_PROVIDERS: Final[dict[str, dict[str, str]]] = {
    "openai": {"base_url": OPENAI_BASE_URL, "env_key": "OPENAI_API_KEY", "wire_api": "chat"},
    "ollama": {"base_url": "http://localhost:11434/v1", "wire_api": "chat"},
    "lmstudio": {"base_url": "http://localhost:1234/v1", "wire_api": "chat"},
}

WireApi = Literal["chat", "responses"]


@attrs.frozen
class Settings:
    provider: str
    base_url: str
    api_key: str
    #: Where the key came from (an environment variable name), for error messages.
    env_key: str | None
    #: The configured default model, or None (then the endpoint's first model).
    model: str | None
    wire_api: WireApi = "chat"


def resolve(
    config: Mapping[str, Any], env: Mapping[str, str], agent_names: frozenset[str] = frozenset()
) -> Settings:
    """Settings from an effective configuration (as `Config.effective()`) and the environment."""
    provider_id = config.get("model_provider")
    provider_id = provider_id if isinstance(provider_id, str) and provider_id else "openai"
    providers = config.get("model_providers")
    configured = providers.get(provider_id) if isinstance(providers, dict) else None
    table: dict[str, Any] = {**BUILT_IN_PROVIDERS.get(provider_id, {}), **(configured or {})}

    base_url = table.get("base_url")
    if provider_id == "openai" and not (configured or {}).get("base_url"):
        base_url = env.get("OPENAI_BASE_URL") or base_url
    env_key = table.get("env_key")
    api_key = env.get(env_key) if isinstance(env_key, str) else None
    wire_api: WireApi = "responses" if table.get("wire_api") == "responses" else "chat"
    model = config.get("model")
    # `model` may name an agent (appserver's default agent); that is no model id.
    if not isinstance(model, str) or not model or model in agent_names:
        model = None
    return Settings(
        provider=provider_id,
        base_url=str(base_url or OPENAI_BASE_URL).rstrip("/"),
        api_key=api_key or NO_KEY,
        env_key=env_key if isinstance(env_key, str) else None,
        model=model,
        wire_api=wire_api,
    )


def read_config(home: Path | None, flags: Mapping[str, Any]) -> dict[str, Any]:
    """`HOME/config.toml` under the session flags, as a dict; without a home or when the file
    is unusable (logged), the flags alone."""
    config: dict[str, Any] = {}
    if home is not None:
        try:
            config = Config.load(home).effective()
        except ConfigError as exc:
            log.warning("openai agent: ignoring %s", exc.message)
    deep_merge(config, flags)
    return config
