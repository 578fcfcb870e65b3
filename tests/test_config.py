"""appserver.config: layers, Codex's versions and key paths, writes that keep the user's file."""

from __future__ import annotations

import os
import string
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appserver.config import (
    Config,
    ConfigError,
    Edit,
    parse_key_path,
    parse_override,
    parse_overrides,
    version_of,
    write_atomically,
)

USER_FILE = """\
# my comment
model = "gpt-x"   # trailing
approval_policy = "never"

[features]
memories = true

[model_providers.local]
name = "Local"
base_url = "http://127.0.0.1:1/v1"
env_key = "LOCAL_KEY"
wire_api = "responses"
"""


def home_with(tmp_path: Path, text: str | None = USER_FILE) -> Path:
    if text is not None:
        (tmp_path / "config.toml").write_text(text)
    return tmp_path


# -- versions, layers, origins: the values the real Codex 0.169 answered for this file ------------


def test_versions_and_layers_match_codex(tmp_path: Path) -> None:
    overrides = parse_overrides(['model_reasoning_effort="high"'], enable=["fast_mode"])
    config = Config.load(home_with(tmp_path), overrides)
    layers = [layer.to_wire() for layer in config.layers()]
    assert [layer["name"] for layer in layers] == [
        {"type": "sessionFlags"},
        {"type": "user", "file": str(tmp_path / "config.toml"), "profile": None},
    ]
    assert layers[0]["version"] == (
        "sha256:852d9b3dc70bfd21d3db7189db84ddbed11682b5c518c7199ca27fb00f775126"
    )
    assert layers[1]["version"] == (
        "sha256:72a36a45001eabab14cc782ce321a5b4351d23276cce728be17d03cf56da81ee"
    )
    assert version_of({}) == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    origins = config.origins()
    assert origins["model_reasoning_effort"]["name"] == {"type": "sessionFlags"}
    assert origins["features.fast_mode"]["name"] == {"type": "sessionFlags"}
    assert origins["model_providers.local.base_url"]["name"]["type"] == "user"
    assert config.reasoning_effort == "high"
    assert config.features == {"memories": True, "fast_mode": True}
    assert config.model == "gpt-x"
    assert config.model_providers["local"]["base_url"] == "http://127.0.0.1:1/v1"


def test_no_file_and_no_flags_is_one_empty_user_layer(tmp_path: Path) -> None:
    config = Config.load(home_with(tmp_path, None), server_cwd="/srv")
    assert [layer.config for layer in config.layers()] == [{}]
    assert config.origins() == {}
    assert config.default_cwd == "/srv"
    assert config.model is None


def test_cwd_key_sets_the_default_cwd(tmp_path: Path) -> None:
    config = Config.load(home_with(tmp_path, 'cwd = "/work/x"\n'), server_cwd="/srv")
    assert config.default_cwd == "/work/x"


def test_a_bad_file_is_refused_and_a_reload_keeps_the_last_good_state(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="approval_policy"):
        Config.load(home_with(tmp_path, 'approval_policy = "bogus"\n'))
    config = Config.load(home_with(tmp_path))
    (tmp_path / "config.toml").write_text("model = [unclosed\n")
    with pytest.raises(ConfigError, match="failed to parse"):
        config.reload()
    assert config.model == "gpt-x"


# -- writes -------------------------------------------------------------------------------------


def test_batch_write_keeps_comments_and_answers_codex_versions(tmp_path: Path) -> None:
    config = Config.load(home_with(tmp_path), parse_overrides(['model_reasoning_effort="high"']))
    result = config.write([Edit("model", "gpt-y"), Edit("model_reasoning_effort", "low")])
    assert result.version == (
        "sha256:e10cea0f532ea2b9634f0bf15c3f50eb6ef121cb7e65fdd91c81b3279d003944"
    )
    # The session flag still wins for the effort: Codex answers okOverridden.
    assert result.status == "okOverridden"
    assert result.overridden_metadata is not None
    assert result.overridden_metadata["message"] == "Overridden by session flags"
    assert result.overridden_metadata["effectiveValue"] == "high"
    result = config.write(
        [
            Edit("features.memories", None),
            Edit("model_providers.local", {"name": "L2"}, "upsert"),
            Edit("unknown_key.x", 5),
            Edit("sandbox_mode", "workspace-write"),
        ]
    )
    assert result.status == "ok"
    assert result.version == (
        "sha256:3a38bcc6237db08a611fab0fe6c0fa692444c73a212477ffed0b43a2f4752f27"
    )
    # Byte for byte what Codex 0.169 wrote for the same edits.
    assert (tmp_path / "config.toml").read_text() == (
        '# my comment\nmodel = "gpt-y"   # trailing\napproval_policy = "never"\n'
        'model_reasoning_effort = "low"\nsandbox_mode = "workspace-write"\n\n[features]\n\n'
        '[model_providers.local]\nname = "L2"\nbase_url = "http://127.0.0.1:1/v1"\n'
        'env_key = "LOCAL_KEY"\nwire_api = "responses"\n\n[unknown_key]\nx = 5\n'
    )
    assert config.model == "gpt-y"
    assert config.sandbox_mode == "workspace-write"


@pytest.mark.parametrize(
    ("edit", "code", "message"),
    [
        (
            Edit("approval_policy", "bogus"),
            "configValidationError",
            "Invalid configuration: unknown variant `bogus`",
        ),
        (Edit("a..b", 1), "configValidationError", "keyPath segments must not be empty"),
        (Edit("", 1), "configValidationError", "keyPath must not be empty"),
        (
            Edit("model", 5),
            "configValidationError",
            "Invalid configuration: invalid type: integer `5`, expected a string\nin `model`\n",
        ),
        (Edit("features.x", "yes"), "configValidationError", "Invalid configuration: invalid type"),
        (Edit("profiles.a", "m"), "configValidationError", "`profiles` contains legacy"),
    ],
)
def test_refused_edits_write_nothing(tmp_path: Path, edit: Edit, code: str, message: str) -> None:
    config = Config.load(home_with(tmp_path))
    with pytest.raises(ConfigError) as caught:
        config.write([Edit("model", "changed"), edit])
    assert caught.value.code == code
    assert caught.value.message.startswith(message)
    assert (tmp_path / "config.toml").read_text() == USER_FILE
    assert config.model == "gpt-x"


def test_expected_version_and_file_path(tmp_path: Path) -> None:
    config = Config.load(home_with(tmp_path))
    with pytest.raises(ConfigError) as caught:
        config.write([Edit("model", "z")], expected_version="sha256:00")
    assert caught.value.code == "configVersionConflict"
    assert caught.value.message == (
        "Configuration was modified since last read. Fetch latest version and retry."
    )
    with pytest.raises(ConfigError) as caught:
        config.write([Edit("model", "z")], file_path="/tmp/elsewhere.toml")
    assert caught.value.code == "configLayerReadonly"
    current = config.user_layer().version
    result = config.write(
        [Edit("model", "z")], expected_version=current, file_path=str(tmp_path / "config.toml")
    )
    assert result.version != current
    assert result.version == config.user_layer().version


def test_a_write_sees_edits_made_to_the_file_meanwhile(tmp_path: Path) -> None:
    config = Config.load(home_with(tmp_path))
    version = config.user_layer().version
    (tmp_path / "config.toml").write_text('review_model = "r"\n' + USER_FILE)
    with pytest.raises(ConfigError):
        config.write([Edit("model", "z")], expected_version=version)
    config.write([Edit("model", "z")])
    assert tomllib.loads((tmp_path / "config.toml").read_text())["review_model"] == "r"


def test_first_write_creates_the_file_0600(tmp_path: Path) -> None:
    config = Config.load(home_with(tmp_path, None))
    config.write([Edit("model", "m")])
    path = tmp_path / "config.toml"
    assert path.read_text() == 'model = "m"\n'
    assert path.stat().st_mode & 0o777 == 0o600


def test_atomic_write_leaves_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("old = 1\n")
    os.chmod(path, 0o640)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, "new = 2\n")
    monkeypatch.undo()
    assert path.read_text() == "old = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temp file left
    write_atomically(path, "new = 2\n")
    assert path.read_text() == "new = 2\n"
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_symlinked_config_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "codex.toml"
    real.parent.mkdir()
    real.write_text("model = 'a'\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").symlink_to(real)
    Config.load(home).write([Edit("model", "b")])
    assert (home / "config.toml").is_symlink()
    assert tomllib.loads(real.read_text()) == {"model": "b"}


# -- property tests ----------------------------------------------------------------------------

bare_keys = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(bare_keys, inner, max_size=3),
    max_leaves=6,
)
#: Keys appserver validates, kept out of the free-form edits below.
HONOURED = {"model", "model_provider", "review_model", "cwd", "approvals_reviewer"}
HONOURED |= {"approval_policy", "sandbox_mode", "model_reasoning_effort", "features"}
HONOURED |= {"model_providers", "sandbox_workspace_write", "profile", "profiles"}
free_keys = bare_keys.filter(lambda k: k not in HONOURED)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(st.tuples(st.lists(free_keys, min_size=1, max_size=3), values), max_size=5))
def test_writes_round_trip_and_keep_the_comments(
    tmp_path: Path, edits: list[tuple[list[str], Any]]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    config = Config.load(tmp_path)
    expected = tomllib.loads(USER_FILE)
    for segments, value in edits:
        config.write([Edit(".".join(segments), value)])
        current = expected
        for segment in segments[:-1]:
            if not isinstance(current.get(segment), dict):
                current[segment] = {}
            current = current[segment]
        current[segments[-1]] = value
        text = path.read_text()
        assert tomllib.loads(text) == expected
        assert config.user_config == expected
        assert "# my comment\n" in text
        if segments[0] != "model":
            assert '"gpt-x"   # trailing' in text


@given(
    key=st.lists(bare_keys, min_size=1, max_size=4).map(".".join),
    value=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.booleans(),
        st.text(string.ascii_letters + "-_/.", max_size=12),
    ),
)
def test_override_values_are_toml_or_else_the_raw_string(key: str, value: Any) -> None:
    if isinstance(value, bool):
        raw = "true" if value else "false"
    elif isinstance(value, int):
        raw = str(value)
    else:
        raw = value
    parsed_key, parsed = parse_override(f" {key} = {raw} ")
    assert parsed_key == key
    if isinstance(value, str):
        try:
            expected: Any = tomllib.loads(f"_x_ = {raw.strip()}")["_x_"]
        except tomllib.TOMLDecodeError:
            expected = raw.strip().strip("\"'")
        assert parsed == expected
    else:
        assert parsed == value


def test_override_examples_from_codex() -> None:
    assert parse_override('model="o3"') == ("model", "o3")
    assert parse_override("model=o3") == ("model", "o3")
    assert parse_override("a.b=x=y") == ("a.b", "x=y")
    assert parse_override('sandbox_permissions=["disk-full-read-access"]') == (
        "sandbox_permissions",
        ["disk-full-read-access"],
    )
    assert parse_override("t={a = 1, b = 2}") == ("t", {"a": 1, "b": 2})
    assert parse_override("use_legacy_landlock=true") == ("features.use_legacy_landlock", True)
    assert parse_overrides([], enable=["a"], disable=["b"]) == [
        ("features.a", True),
        ("features.b", False),
    ]
    with pytest.raises(ConfigError, match=r"Invalid override \(missing '='\): foo"):
        parse_override("foo")
    with pytest.raises(ConfigError, match="Empty key in override: =3"):
        parse_override("=3")


@given(segments=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4))
def test_quoted_key_paths_round_trip(segments: list[str]) -> None:
    def quote(segment: str) -> str:
        return '"' + segment.replace("\\", "\\\\").replace('"', '\\"') + '"'

    assert parse_key_path(".".join(quote(s) for s in segments)) == segments
