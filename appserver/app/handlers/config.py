"""Config methods over `HOME/config.toml` (appserver.config): read, value/write, batchWrite.

Writes run in a worker thread (file I/O with fsync) and answer as Codex does: `-32600` with
`data.config_write_error_code` for a refused write, `-32603` when the file cannot be read.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import trio

from appserver.app.threads import Threads
from appserver.config import Config, ConfigError, Edit, WriteResult
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.errors import RpcError

#: The keys of Codex's `Config` (v2 schema), answered as null when not configured, as Codex does.
CONFIG_KEYS: Final = (
    "analytics",
    "approval_policy",
    "approvals_reviewer",
    "apps",
    "browser_use",
    "client_search_provider",
    "compact_prompt",
    "computer_use",
    "desktop",
    "developer_instructions",
    "forced_chatgpt_workspace_id",
    "forced_login_method",
    "instructions",
    "model",
    "model_auto_compact_token_limit",
    "model_auto_compact_token_limit_scope",
    "model_context_window",
    "model_provider",
    "model_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "review_model",
    "sandbox_mode",
    "sandbox_workspace_write",
    "service_tier",
    "tools",
    "web_search",
)


def config_read_result(config: Config, include_layers: bool) -> dict[str, Any]:
    effective: dict[str, Any] = dict.fromkeys(CONFIG_KEYS)
    effective.update(config.effective())
    effective.setdefault("features", {})
    effective.setdefault("model_providers", {})
    layers = [layer.to_wire() for layer in config.layers()] if include_layers else None
    return {"config": effective, "origins": config.origins(), "layers": layers}


def write_error(exc: ConfigError) -> RpcError:
    if exc.code is None:
        return RpcError.internal(exc.message)
    return RpcError.invalid_request(exc.message, {"config_write_error_code": exc.code})


async def write(
    config: Config, edits: list[Edit], file_path: str | None, expected_version: str | None
) -> WriteResult:
    try:
        return await trio.to_thread.run_sync(
            functools.partial(
                config.write, edits, file_path=file_path, expected_version=expected_version
            )
        )
    except ConfigError as exc:
        raise write_error(exc) from None
    except OSError as exc:
        raise RpcError.internal(f"failed to persist config.toml: {exc}") from None


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method
    config = threads.config

    @method("config/read", v2.ConfigReadParams)
    async def config_read(ctx: RequestContext, params: v2.ConfigReadParams) -> dict[str, Any]:
        try:
            await trio.to_thread.run_sync(config.reload)
        except ConfigError as exc:
            raise RpcError.internal(f"invalid configuration: {exc.message}") from None
        except OSError as exc:
            raise RpcError.internal(f"failed to read configuration layers: {exc}") from None
        return config_read_result(config, params.include_layers)

    @method("config/value/write", v2.ConfigValueWriteParams)
    async def config_value_write(
        ctx: RequestContext, params: v2.ConfigValueWriteParams
    ) -> dict[str, Any]:
        edits = [Edit(params.key_path, params.value, params.merge_strategy)]
        result = await write(config, edits, params.file_path, params.expected_version)
        return result.to_wire()

    @method("config/batchWrite", v2.ConfigBatchWriteParams)
    async def config_batch_write(
        ctx: RequestContext, params: v2.ConfigBatchWriteParams
    ) -> dict[str, Any]:
        edits = [Edit(e.key_path, e.value, e.merge_strategy) for e in params.edits]
        result = await write(config, edits, params.file_path, params.expected_version)
        return result.to_wire()

    @method("configRequirements/read")
    def config_requirements_read(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"requirements": None, "supportsIndependentSpeedModes": False}
