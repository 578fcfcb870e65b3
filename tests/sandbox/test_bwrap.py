"""The bubblewrap command line built for each policy."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from appserver.sandbox.bwrap import bwrap_argv
from appserver.sandbox.policy import Policy

READ_ONLY = Policy("readOnly")


def test_read_only_mounts_everything_read_only() -> None:
    argv = bwrap_argv(["/bin/true"], READ_ONLY, "/", bwrap="/usr/bin/bwrap")
    assert argv == [
        "/usr/bin/bwrap",
        "--new-session",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--unshare-pid",
        "--unshare-net",
        "--proc",
        "/proc",
        "--chdir",
        "/",
        "--",
        "/bin/true",
    ]


def test_network_access_keeps_the_host_network() -> None:
    argv = bwrap_argv(["x"], Policy("readOnly", network=True), "/")
    assert "--unshare-net" not in argv
    assert "--unshare-pid" in argv


def binds(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_workspace_write_binds_roots_then_protects_subpaths(tmp_path: Path) -> None:
    cwd = tmp_path / "repo"
    (cwd / ".git").mkdir(parents=True)
    (cwd / ".codex").mkdir()
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (cwd / ".agents").symlink_to(decoy)
    policy = Policy("workspaceWrite", exclude_slash_tmp=True)
    argv = bwrap_argv(["x"], policy, str(cwd))
    assert binds(argv, "--bind") == [(str(cwd), str(cwd))]
    protected = binds(argv, "--ro-bind")
    assert protected[0] == ("/", "/")
    assert set(protected[1:]) == {
        (str(cwd / ".git"), str(cwd / ".git")),
        (str(cwd / ".codex"), str(cwd / ".codex")),
        ("/dev/null", str(cwd / ".agents")),
    }
    last_bind = max(i for i, a in enumerate(argv) if a == "--bind")
    first_protect = min(i for i, a in enumerate(argv) if a == "--ro-bind" and i > 3)
    assert last_bind < first_protect
    assert argv.index("--dev") < argv.index("--bind")


segment = st.text(alphabet="abc-_ .'\"$", min_size=1, max_size=6).filter(
    lambda name: name not in (".", "..")
)


@given(
    argv=st.lists(st.text(max_size=10), min_size=1, max_size=5),
    network=st.booleans(),
    kind=st.sampled_from(["readOnly", "workspaceWrite"]),
)
def test_the_command_is_passed_verbatim_after_the_separator(
    argv: list[str], network: bool, kind: str
) -> None:
    policy = Policy(kind, network=network, exclude_slash_tmp=True)  # type: ignore[arg-type]
    built = bwrap_argv(argv, policy, "/")
    separator = built.index("--")
    assert built[separator + 1 :] == argv
    assert ("--unshare-net" in built[:separator]) is not network
    assert built[1:3] == ["--new-session", "--die-with-parent"]
    assert built[3:6] == ["--ro-bind", "/", "/"]


@given(names=st.lists(segment, min_size=1, max_size=4, unique=True))
def test_every_writable_root_is_bound_once(names: list[str]) -> None:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as base:
        roots = []
        for name in names:
            path = Path(base) / name
            path.mkdir()
            roots.append(str(path))
        policy = Policy(
            "workspaceWrite",
            writable_roots=tuple(roots),
            exclude_slash_tmp=True,
            exclude_tmpdir_env_var=True,
        )
        argv = bwrap_argv(["x"], policy, roots[0])
        bound = [src for src, dst in binds(argv, "--bind") if src == dst]
        assert sorted(bound) == sorted(roots)


def test_hidden_directories_get_an_empty_read_only_tmpfs(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    argv = bwrap_argv(["x"], READ_ONLY, str(cwd), hidden=[str(home), str(tmp_path / "gone")])
    index = argv.index("--tmpfs")
    assert argv[index - 2 : index + 4] == [
        "--perms",
        "0555",
        "--tmpfs",
        str(home),
        "--remount-ro",
        str(home),
    ]
    assert argv.count("--tmpfs") == 1
    sock = tmp_path / "s.sock"
    sock.touch()
    argv = bwrap_argv(["x"], READ_ONLY, str(cwd), hidden=[str(sock)])
    assert argv[argv.index("--unshare-pid") - 3 : argv.index("--unshare-pid")] == [
        "--ro-bind",
        "/dev/null",
        str(sock),
    ]
    inside = bwrap_argv(["x"], READ_ONLY, str(home), hidden=[str(home)])
    assert "--tmpfs" not in inside


def test_a_hidden_path_inside_a_hidden_directory_is_left_to_it(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / "control").mkdir(parents=True)
    cwd.mkdir()
    sock = home / "control" / "s.sock"
    sock.touch()
    argv = bwrap_argv(["x"], READ_ONLY, str(cwd), hidden=[str(home), str(sock)])
    assert argv.count("--tmpfs") == 1
    assert str(sock) not in argv  # bwrap cannot mount inside the read-only tmpfs
    # With the cwd inside the home, the home stays visible and the socket is still hidden.
    inside = bwrap_argv(["x"], READ_ONLY, str(home), hidden=[str(home), str(sock)])
    assert inside[inside.index("--unshare-pid") - 3 : inside.index("--unshare-pid")] == [
        "--ro-bind",
        "/dev/null",
        str(sock),
    ]
