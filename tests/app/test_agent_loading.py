"""Finding a custom agent without PYTHONPATH tricks: the current directory, the
`appserver.agents` entry point group, and load errors that say what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appserver.app.agents import AgentError, load_agent

AGENT_SOURCE = """
class Agent:
    name = "{name}"
    display_name = "{name}"
    description = "a test agent"

    async def run_turn(self, turn):
        await turn.say("hi from {name}", chunks=1)
"""


@pytest.fixture
def clean_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A cwd holding agent modules, with neither it nor `""` on sys.path (as under the
    installed `appserver` script)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    return tmp_path


def test_a_module_in_the_current_directory_is_found(clean_path: Path) -> None:
    (clean_path / "cwd_agent_mod.py").write_text(AGENT_SOURCE.format(name="from-cwd"))
    assert load_agent("cwd_agent_mod:Agent").name == "from-cwd"
    assert sys.path[-1] == str(clean_path)  # searched last: it never shadows an installed one


def test_an_entry_point_names_an_agent(clean_path: Path) -> None:
    site = clean_path / "site"
    (site / "ep_agent_pkg").mkdir(parents=True)
    (site / "ep_agent_pkg" / "__init__.py").write_text(AGENT_SOURCE.format(name="from-ep"))
    dist = site / "ep_agent_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-agent-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[appserver.agents]\nmine = ep_agent_pkg:Agent\n")
    sys.path.insert(0, str(site))
    assert load_agent("mine").name == "from-ep"


def test_a_missing_module_says_where_it_looked_and_what_to_do(clean_path: Path) -> None:
    with pytest.raises(AgentError) as raised:
        load_agent("nowhere_to_be_found:Agent")
    message = str(raised.value)
    assert message.startswith(
        "cannot load agent 'nowhere_to_be_found:Agent': no module named 'nowhere_to_be_found'"
    )
    assert str(clean_path) in message
    assert "'appserver.agents' entry point group" in message


def test_a_broken_module_and_a_missing_attribute_are_told_apart(clean_path: Path) -> None:
    (clean_path / "broken_agent_mod.py").write_text("import not_installed_dependency\n")
    with pytest.raises(AgentError, match="importing 'broken_agent_mod' failed: No module named"):
        load_agent("broken_agent_mod:Agent")
    (clean_path / "attrless_agent_mod.py").write_text("x = 1\n")
    with pytest.raises(AgentError, match="module 'attrless_agent_mod' has no attribute 'Agent'"):
        load_agent("attrless_agent_mod:Agent")
    with pytest.raises(AgentError, match=r"unknown agent 'nameless'.*entry point group"):
        load_agent("nameless")


def test_the_installed_script_serves_an_agent_from_its_cwd(tmp_path: Path) -> None:
    (tmp_path / "script_agent_mod.py").write_text(AGENT_SOURCE.format(name="scripted"))
    script = Path(sys.executable).parent / "appserver"
    lines = (
        b'{"id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}\n'
        b'{"id":2,"method":"model/list","params":{}}\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(script), "--agent", "script_agent_mod:Agent", "--home", str(tmp_path / "home")],
        input=lines,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b'"id":"scripted"' in result.stdout
