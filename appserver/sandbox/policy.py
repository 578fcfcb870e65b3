"""The wire `SandboxPolicy` (a JSON object) as a typed value, and the roots it lets a command
write, computed the way Codex does (`get_writable_roots_with_cwd`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

Kind = Literal["dangerFullAccess", "readOnly", "workspaceWrite", "externalSandbox"]
KINDS: Final = ("dangerFullAccess", "readOnly", "workspaceWrite", "externalSandbox")
#: Subpaths of a writable root that stay read-only (Codex protects the same ones).
PROTECTED_SUBPATHS: Final = (".git", ".codex", ".agents")


class PolicyError(ValueError):
    """The wire object is not a sandbox policy."""


@attrs.frozen
class Policy:
    kind: Kind
    network: bool = False
    writable_roots: tuple[str, ...] = ()
    exclude_tmpdir_env_var: bool = False
    exclude_slash_tmp: bool = False

    @property
    def confined(self) -> bool:
        """Whether appserver itself must confine the command (`dangerFullAccess` runs as is;
        `externalSandbox` says something outside the server already confines it)."""
        return self.kind in ("readOnly", "workspaceWrite")


DANGER_FULL_ACCESS: Final = Policy("dangerFullAccess", network=True)
READ_ONLY: Final = Policy("readOnly")


def _flag(wire: Mapping[str, Any], name: str) -> bool:
    value = wire.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PolicyError(f"sandbox policy field {name} must be a boolean")
    return value


def parse_policy(wire: Mapping[str, Any] | Policy) -> Policy:
    """A `Policy` from a wire `SandboxPolicy`; `PolicyError` if it is not one."""
    if isinstance(wire, Policy):
        return wire
    if not isinstance(wire, Mapping):
        raise PolicyError("sandbox policy must be an object")
    kind = wire.get("type")
    if kind not in KINDS:
        raise PolicyError(f"unknown sandbox policy type: {kind!r}")
    if kind == "dangerFullAccess":
        return DANGER_FULL_ACCESS
    if kind == "externalSandbox":
        return Policy("externalSandbox", network=wire.get("networkAccess") == "enabled")
    if kind == "readOnly":
        return Policy("readOnly", network=_flag(wire, "networkAccess"))
    roots = wire.get("writableRoots") or []
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise PolicyError("sandbox policy field writableRoots must be a list of paths")
    for root in roots:
        if not os.path.isabs(root):
            raise PolicyError(f"writable root must be an absolute path: {root}")
    return Policy(
        "workspaceWrite",
        network=_flag(wire, "networkAccess"),
        writable_roots=tuple(roots),
        exclude_tmpdir_env_var=_flag(wire, "excludeTmpdirEnvVar"),
        exclude_slash_tmp=_flag(wire, "excludeSlashTmp"),
    )


def writable_roots(policy: Policy, cwd: str, tmpdir: str | None) -> list[str]:
    """The directories a `workspaceWrite` command may write (resolved, existing, parents
    before children, no duplicates): its `writableRoots`, the cwd, `/tmp` unless
    `excludeSlashTmp`, `$TMPDIR` unless `excludeTmpdirEnvVar`. Empty for every other policy."""
    if policy.kind != "workspaceWrite":
        return []
    candidates = [*policy.writable_roots, cwd]
    if not policy.exclude_slash_tmp:
        candidates.append("/tmp")
    if not policy.exclude_tmpdir_env_var and tmpdir:
        candidates.append(tmpdir)
    resolved = {os.path.realpath(c) for c in candidates if os.path.isabs(c)}
    return sorted((r for r in resolved if os.path.isdir(r)), key=lambda r: (r.count("/"), r))
