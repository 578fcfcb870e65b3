"""HOME/config.toml and the command line's config flags end to end, over every transport: the
TUI's `/model` -> Enter write, config/read's layers, and the defaults a new thread gets."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.e2e.transports import KINDS, Kind, open_client, spawn_server
from tests.schema import schema_for

pytestmark = pytest.mark.e2e

#: What the 0.169 TUI sends on `/model` -> pick -> Enter (real_server_tui_actions.jsonl).
TUI_MODEL_WRITE = {
    "edits": [
        {"keyPath": "model", "value": "echo", "mergeStrategy": "replace"},
        {"keyPath": "model_reasoning_effort", "value": "low", "mergeStrategy": "replace"},
    ],
    "filePath": None,
    "expectedVersion": None,
    "reloadUserConfig": True,
}


@pytest.mark.parametrize("kind", KINDS)
async def test_tui_model_write_and_config_flags(kind: Kind, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('# my settings\napproval_policy = "never"  # keep\n')
    schema = schema_for(True)
    flags = ("-c", "sandbox_mode=workspace-write", "--enable", "prevent_idle_sleep")
    async with spawn_server(kind, home, *flags) as server, open_client(kind, server) as client:
        await client.initialize()
        written = await client.call("config/batchWrite", TUI_MODEL_WRITE)
        schema.validate_response("config/batchWrite", written)
        assert written["status"] == "ok"
        assert written["filePath"] == str(home / "config.toml")

        read = await client.call("config/read", {"includeLayers": True, "cwd": "."})
        schema.validate_response("config/read", read)
        config = read["config"]
        assert (config["model"], config["model_reasoning_effort"]) == ("echo", "low")
        assert config["sandbox_mode"] == "workspace-write"
        assert config["features"] == {"prevent_idle_sleep": True}
        flags_layer, user_layer = read["layers"]
        assert flags_layer["name"] == {"type": "sessionFlags"}
        assert user_layer["version"] == written["version"]
        assert read["origins"]["approval_policy"]["name"]["type"] == "user"
        assert read["origins"]["sandbox_mode"]["name"]["type"] == "sessionFlags"

        started = await client.call("thread/start", {"cwd": str(tmp_path)})
        schema.validate_response("thread/start", started)
        assert started["reasoningEffort"] == "low"
        assert started["approvalPolicy"] == "never"
        assert started["sandbox"]["type"] == "workspaceWrite"

        stale = await client.request(
            "config/value/write",
            {
                "keyPath": "model",
                "value": "x",
                "mergeStrategy": "replace",
                "expectedVersion": "sha256:0",
            },
        )
        assert stale["error"]["data"] == {"config_write_error_code": "configVersionConflict"}

    text = (home / "config.toml").read_text()
    assert text.startswith('# my settings\napproval_policy = "never"  # keep\n')
    assert tomllib.loads(text) == {
        "approval_policy": "never",
        "model": "echo",
        "model_reasoning_effort": "low",
    }
