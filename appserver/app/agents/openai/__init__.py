"""The built-in model-backed coding agent (`--agent openai`): any OpenAI-compatible endpoint
through Chat Completions (or the Responses API), with Codex's shell, apply_patch and
update_plan tools. The `openai` SDK is imported only when a turn or `model/list` needs it."""

from __future__ import annotations

from appserver.app.agents.openai.agent import OpenAIAgent

__all__ = ["OpenAIAgent"]
