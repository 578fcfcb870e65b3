"""HOME/config.toml defaults and a request's `config` applied to thread/start, resume and fork."""

from __future__ import annotations

from pathlib import Path

from tests.app.app_harness import open_app

CONFIG_TOML = """\
# defaults for new threads
model_reasoning_effort = "high"
approval_policy = "never"
sandbox_mode = "workspace-write"
cwd = "/srv/projects"

[sandbox_workspace_write]
writable_roots = ["/srv/cache"]
network_access = true
"""


async def test_request_config_comes_back_in_the_response(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        started = await client.call(
            "thread/start", {"config": {"model_reasoning_effort": "low"}, "cwd": "/tmp"}
        )
        assert started["reasoningEffort"] == "low"
        assert started["thread"]["reasoningEffort"] == "low"
        assert started["cwd"] == "/tmp"
        assert client.assert_schema_valid() > 0


async def test_config_toml_gives_new_threads_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG_TOML)
    async with open_app(tmp_path) as app:
        client = await app.client()
        started = await client.call("thread/start", {})
        assert started["reasoningEffort"] == "high"
        assert started["approvalPolicy"] == "never"
        assert started["cwd"] == "/srv/projects"
        assert started["sandbox"] == {
            "type": "workspaceWrite",
            "writableRoots": ["/srv/cache"],
            "networkAccess": True,
            "excludeTmpdirEnvVar": False,
            "excludeSlashTmp": False,
        }
        # Explicit params win over the request's config, which wins over the file.
        started = await client.call(
            "thread/start",
            {
                "approvalPolicy": "untrusted",
                "sandbox": "read-only",
                "cwd": "/tmp",
                "config": {"model_reasoning_effort": "minimal", "approval_policy": "on-request"},
            },
        )
        assert started["approvalPolicy"] == "untrusted"
        assert started["sandbox"]["type"] == "readOnly"
        assert started["reasoningEffort"] == "minimal"
        assert started["cwd"] == "/tmp"
        assert client.assert_schema_valid() > 0


async def test_a_config_write_applies_to_the_next_thread(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        first = await client.call("thread/start", {})
        assert first["reasoningEffort"] is None
        await client.call(
            "config/batchWrite",
            {
                "edits": [
                    {
                        "keyPath": "model_reasoning_effort",
                        "value": "low",
                        "mergeStrategy": "replace",
                    }
                ]
            },
        )
        second = await client.call("thread/start", {})
        assert second["reasoningEffort"] == "low"


async def test_resume_and_fork_apply_only_what_their_config_sets(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        started = await client.call("thread/start", {"approvalPolicy": "never"})
        thread_id = started["thread"]["id"]
        (tmp_path / "config.toml").write_text('approval_policy = "untrusted"\n')
        resumed = await client.call(
            "thread/resume",
            {"threadId": thread_id, "config": {"model_reasoning_effort": "high"}},
        )
        assert resumed["reasoningEffort"] == "high"
        assert resumed["approvalPolicy"] == "never"  # the thread's own, not the file's
        read = await client.call("thread/read", {"threadId": thread_id})
        assert read["thread"]["reasoningEffort"] == "high"
        forked = await client.call(
            "thread/fork", {"threadId": thread_id, "config": {"model_reasoning_effort": "low"}}
        )
        assert forked["reasoningEffort"] == "low"
        assert client.assert_schema_valid() > 0


async def test_a_bad_config_value_is_refused(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        error = await client.error("thread/start", {"config": {"sandbox_mode": "wide-open"}})
        assert error["code"] == -32600
        assert "unknown variant `wide-open`" in error["message"]
        error = await client.error("thread/start", {"config": {"model_reasoning_effort": 3}})
        assert "model_reasoning_effort" in error["message"]
