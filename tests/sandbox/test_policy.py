"""Parsing the wire SandboxPolicy and the writable roots it grants."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.sandbox.policy import Policy, PolicyError, parse_policy, writable_roots


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ({"type": "dangerFullAccess"}, Policy("dangerFullAccess", network=True)),
        ({"type": "readOnly"}, Policy("readOnly")),
        ({"type": "readOnly", "networkAccess": True}, Policy("readOnly", network=True)),
        ({"type": "externalSandbox"}, Policy("externalSandbox")),
        (
            {"type": "externalSandbox", "networkAccess": "enabled"},
            Policy("externalSandbox", network=True),
        ),
        (
            {
                "type": "workspaceWrite",
                "writableRoots": ["/a"],
                "networkAccess": True,
                "excludeTmpdirEnvVar": True,
                "excludeSlashTmp": None,
            },
            Policy("workspaceWrite", True, ("/a",), True, False),
        ),
    ],
)
def test_parse(wire: dict[str, Any], expected: Policy) -> None:
    assert parse_policy(wire) == expected


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "nope"},
        {},
        {"type": "readOnly", "networkAccess": "yes"},
        {"type": "workspaceWrite", "writableRoots": ["relative"]},
        {"type": "workspaceWrite", "writableRoots": "/a"},
    ],
)
def test_malformed_policies_are_refused(wire: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        parse_policy(wire)


@given(st.dictionaries(st.text(max_size=20), st.none() | st.booleans() | st.text(max_size=5)))
def test_parse_never_fails_otherwise_than_with_policy_error(wire: dict[str, Any]) -> None:
    try:
        policy = parse_policy(wire)
    except PolicyError:
        return
    assert policy.kind == wire["type"]


def test_confined_policies() -> None:
    assert parse_policy({"type": "readOnly"}).confined
    assert parse_policy({"type": "workspaceWrite"}).confined
    assert not parse_policy({"type": "dangerFullAccess"}).confined
    assert not parse_policy({"type": "externalSandbox"}).confined


def test_writable_roots_follow_codex(tmp_path: Path) -> None:
    cwd, extra, tmpdir = tmp_path / "cwd", tmp_path / "extra", tmp_path / "tmpdir"
    for path in (cwd, extra, tmpdir):
        path.mkdir()
    policy = parse_policy({"type": "workspaceWrite", "writableRoots": [str(extra)]})
    roots = writable_roots(policy, str(cwd), str(tmpdir))
    assert set(roots) == {str(cwd), str(extra), str(tmpdir), "/tmp"}
    assert roots[0] == "/tmp"  # parents first
    excluded = Policy("workspaceWrite", exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
    assert writable_roots(excluded, str(cwd), str(tmpdir)) == [str(cwd)]
    assert writable_roots(parse_policy({"type": "readOnly"}), str(cwd), str(tmpdir)) == []


def test_writable_roots_are_resolved_and_must_exist(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    policy = Policy("workspaceWrite", exclude_slash_tmp=True)
    roots = writable_roots(policy, str(link), str(tmp_path / "missing"))
    assert roots == [os.path.realpath(real)]
