"""The inventories a client lists (handlers/catalogs.py), each checked against the schema."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.app.app_harness import open_app, run_turn, start_thread


async def test_every_inventory_answers_with_codex_shapes(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, cwd="/tmp")
        modes = await client.call("collaborationMode/list", {})
        assert [(m["name"], m["mode"]) for m in modes["data"]] == [
            ("Plan", "plan"),
            ("Default", "default"),
        ]
        hooks = await client.call("hooks/list", {"cwds": ["/a", "/b"], "threadId": None})
        assert hooks["data"] == [
            {"cwd": "/a", "hooks": [], "warnings": [], "errors": []},
            {"cwd": "/b", "hooks": [], "warnings": [], "errors": []},
        ]
        hooks = await client.call("hooks/list", {"threadId": thread_id})
        assert [entry["cwd"] for entry in hooks["data"]] == ["/tmp"]
        skills = await client.call("skills/list", {"cwds": ["/a"], "forceReload": True})
        assert skills["data"] == [{"cwd": "/a", "skills": [], "errors": []}]
        profiles = await client.call("permissionProfile/list", {"cursor": None, "limit": 100})
        assert [p["id"] for p in profiles["data"]] == [
            ":read-only",
            ":workspace",
            ":danger-full-access",
        ]
        assert profiles["nextCursor"] is None
        mcp = await client.call(
            "mcpServerStatus/list",
            {"limit": 100, "detail": "toolsAndAuthOnly", "threadId": thread_id},
        )
        assert mcp == {"data": [], "nextCursor": None}
        plugins = await client.call("plugin/list", {})
        assert plugins["marketplaces"] == []
        detected = await client.call("externalAgentConfig/detect", {"includeHome": True})
        assert detected == {"items": [], "connectors": []}
        assert await client.call("account/logout", no_params=True) == {}
        voices = await client.call("thread/realtime/listVoices", {})
        assert voices["voices"]["defaultV2"] in voices["voices"]["v2"]
        assert await client.call("thread/realtime/start", {"threadId": thread_id}) == {}
        error = await client.notification("thread/realtime/error", threadId=thread_id)
        assert "not available" in error["message"]
        await client.notification("thread/realtime/closed", threadId=thread_id)
        assert await client.call("thread/realtime/stop", {"threadId": thread_id}) == {}
        status = await client.call("memory/status", {})
        assert status == {"v2ConsolidatedThreads": 0, "v2Ready": True}
        assert await client.call("memory/reset", no_params=True) == {}
        mode = {"threadId": thread_id, "mode": "disabled"}
        assert await client.call("thread/memoryMode/set", mode) == {}
        assert await client.call("thread/memory/read", {"threadId": thread_id}) == {"summary": None}
        assert client.assert_schema_valid() > 0


async def test_experimental_features_page_and_toggle_into_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("# mine\n[features]\nshell_tool = false\n")
    async with open_app(tmp_path) as app:
        client = await app.client()
        names: list[str] = []
        cursor = None
        while True:
            page = await client.call("experimentalFeature/list", {"cursor": cursor, "limit": 100})
            names += [f["name"] for f in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert len(names) == len(set(names)) == 215
        listed = {f["name"]: f for f in (await client.call("experimentalFeature/list", {}))["data"]}
        assert listed["shell_tool"]["enabled"] is False  # config.toml
        assert listed["shell_tool"]["defaultEnabled"] is True
        assert listed["prevent_idle_sleep"]["stage"] == "beta"
        result = await client.call(
            "experimentalFeature/enablement/set",
            {"enablement": {"prevent_idle_sleep": True, "no_such_feature": True}},
        )
        assert result == {"enablement": {"prevent_idle_sleep": True}}
        listed = {f["name"]: f for f in (await client.call("experimentalFeature/list", {}))["data"]}
        assert listed["prevent_idle_sleep"]["enabled"] is True
        error = await client.error("experimentalFeature/list", {"cursor": "bogus"})
        assert error == {"code": -32600, "message": "invalid cursor: bogus"}
        assert client.assert_schema_valid() > 0
    text = (tmp_path / "config.toml").read_text()
    assert text.startswith("# mine\n")
    assert tomllib.loads(text)["features"] == {"shell_tool": False, "prevent_idle_sleep": True}


async def test_model_providers_come_from_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'model_provider = "local"\n[model_providers.local]\nname = "Local"\n'
        'base_url = "http://127.0.0.1:9/v1"\nenv_key = "LOCAL_KEY"\n'
    )
    async with open_app(tmp_path) as app:
        client = await app.client()
        providers = await client.call("modelProvider/list", {})
        assert providers["defaultProviderId"] == "local"
        local = providers["data"][0]
        assert local == {
            "id": "local",
            "name": "Local",
            "canEdit": True,
            "baseUrl": "http://127.0.0.1:9/v1",
            "settings": {
                "type": "customGateway",
                "auth": {"mode": "environmentVariable", "envKey": "LOCAL_KEY"},
            },
        }
        assert client.assert_schema_valid() > 0


@pytest.mark.parametrize("mode", ["plan", "default"])
async def test_a_turn_in_a_collaboration_mode_runs_with_the_default_agent(
    tmp_path: Path, mode: str
) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client)
        collaboration = {"mode": mode, "settings": {"model": "echo", "reasoning_effort": "medium"}}
        frames = await run_turn(client, thread_id, "make a plan", collaborationMode=collaboration)
        completed = [f for f in frames if f.get("method") == "turn/completed"]
        assert completed[0]["params"]["turn"]["status"] == "completed"
        # Kept for later turns, its settings taking precedence (and surviving a resume).
        state = app.threads.loaded[thread_id].state
        assert state.collaboration_mode == collaboration
        resumed = await client.call("thread/resume", {"threadId": thread_id})
        assert resumed["reasoningEffort"] == "medium"
        assert client.assert_schema_valid() > 0
