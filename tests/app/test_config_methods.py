"""config/read, config/value/write, config/batchWrite over the app, validated against the schema."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.app.app_harness import open_app

TUI_MODEL_EDIT = {
    "edits": [
        {"keyPath": "model", "value": "echo", "mergeStrategy": "replace"},
        {"keyPath": "model_reasoning_effort", "value": "low", "mergeStrategy": "replace"},
    ],
    "filePath": None,
    "expectedVersion": None,
    "reloadUserConfig": True,
}


async def test_tui_model_edit_is_written_and_read_back(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("# keep me\napproval_policy = 'never'\n")
    async with open_app(tmp_path) as app:
        client = await app.client(experimental=True)
        result = await client.call("config/batchWrite", TUI_MODEL_EDIT)
        assert result["status"] == "ok"
        assert result["filePath"] == str(tmp_path / "config.toml")
        assert result["overriddenMetadata"] is None
        read = await client.call("config/read", {"includeLayers": True, "cwd": "."})
        assert read["config"]["model"] == "echo"
        assert read["config"]["model_reasoning_effort"] == "low"
        assert read["config"]["approval_policy"] == "never"
        assert read["config"]["sandbox_mode"] is None
        (layer,) = read["layers"]
        assert layer["version"] == result["version"]
        assert read["origins"]["model"] == {"name": layer["name"], "version": layer["version"]}
        assert client.assert_schema_valid() > 0
    text = (tmp_path / "config.toml").read_text()
    assert text.startswith("# keep me\napproval_policy = 'never'\n")


async def test_write_errors_carry_codex_codes(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        error = await client.error(
            "config/value/write",
            {"keyPath": "sandbox_mode", "value": "open", "mergeStrategy": "replace"},
        )
        assert error["code"] == -32600
        assert error["data"] == {"config_write_error_code": "configValidationError"}
        assert error["message"].startswith("Invalid configuration: unknown variant `open`")
        error = await client.error(
            "config/value/write",
            {
                "keyPath": "model",
                "value": "x",
                "mergeStrategy": "replace",
                "expectedVersion": "sha256:stale",
            },
        )
        assert error["data"] == {"config_write_error_code": "configVersionConflict"}
        error = await client.error(
            "config/batchWrite",
            {"edits": [], "filePath": str(tmp_path / "other.toml")},
        )
        assert error["data"] == {"config_write_error_code": "configLayerReadonly"}
        error = await client.error(
            "config/value/write", {"keyPath": "model", "value": "x", "mergeStrategy": "merge"}
        )
        assert error["message"].startswith("Invalid request: unknown variant `merge`")
        assert client.assert_schema_valid() > 0
    assert not (tmp_path / "config.toml").exists()


async def test_concurrent_writes_all_land(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        clients = [await app.client() for _ in range(8)]

        async def write(index: int) -> None:
            await clients[index].call(
                "config/value/write",
                {"keyPath": f"features.f{index}", "value": True, "mergeStrategy": "upsert"},
            )

        async with trio.open_nursery() as nursery:
            for index in range(8):
                nursery.start_soon(write, index)
        read = await clients[0].call("config/read", {})
        assert read["config"]["features"] == {f"f{i}": True for i in range(8)}
        assert read["layers"] is None


async def test_a_null_value_removes_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('model = "m"  # gone soon\nreview_model = "r"\n')
    async with open_app(tmp_path) as app:
        client = await app.client()
        result = await client.call(
            "config/value/write", {"keyPath": "model", "value": None, "mergeStrategy": "replace"}
        )
        assert result["status"] == "ok"
        read = await client.call("config/read", {})
        assert read["config"]["model"] is None
        assert "model" not in read["origins"]
        assert client.assert_schema_valid() > 0
    assert (tmp_path / "config.toml").read_text() == 'review_model = "r"\n'
