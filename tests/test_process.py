"""The process runner: pipes, PTY, stdin, caps, timeouts, and nothing outliving its caller."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import trio

from appserver import process
from appserver.process import Spec
from appserver.sandbox import enforce
from tests.sandbox_checks import require_bwrap, running_with

DANGER = {"type": "dangerFullAccess"}
READ_ONLY = {"type": "readOnly"}


async def test_pipes_keep_stdout_and_stderr_apart(tmp_path: Path) -> None:
    spec = Spec(
        argv=["sh", "-c", "echo out; echo err >&2; exit 5"], cwd=str(tmp_path), sandbox=DANGER
    )
    result = await process.run(spec)
    assert (result.exit_code, result.stdout, result.stderr) == (5, b"out\n", b"err\n")
    merged = await process.run(
        Spec(
            argv=["sh", "-c", "echo out; echo err >&2"], cwd="/", sandbox=DANGER, merge_stderr=True
        )
    )
    assert merged.stdout == b"out\nerr\n"


async def test_streaming_callback_and_cap(tmp_path: Path) -> None:
    seen: list[tuple[str, bytes, bool]] = []

    async def on_output(stream: str, data: bytes, cap_reached: bool) -> None:
        seen.append((stream, data, cap_reached))

    spec = Spec(
        argv=["sh", "-c", "head -c 5000 /dev/zero"], cwd="/", sandbox=DANGER, output_cap=100
    )
    result = await process.run(spec, on_output)
    assert result.stdout == b"\0" * 100
    assert result.stdout_cap_reached
    assert b"".join(d for _, d, _ in seen) == b"\0" * 100
    assert seen[-1][2] is True


async def test_env_is_merged_and_network_flag_set() -> None:
    spec = Spec(
        argv=["sh", "-c", 'echo "$ADDED|${HOME:+home}|$CODEX_SANDBOX_NETWORK_DISABLED"'],
        cwd="/",
        sandbox=DANGER,
        env={"ADDED": "a"},
    )
    assert (await process.run(spec)).stdout == b"a|home|\n"
    unset = Spec(
        argv=["sh", "-c", 'echo "${HOME-unset}"'], cwd="/", sandbox=DANGER, env={"HOME": None}
    )
    assert (await process.run(unset)).stdout == b"unset\n"


async def test_network_disabled_is_announced_in_the_environment() -> None:
    await require_bwrap()
    spec = Spec(
        argv=["sh", "-c", "echo $CODEX_SANDBOX_NETWORK_DISABLED"], cwd="/", sandbox=READ_ONLY
    )
    assert (await process.run(spec)).stdout == b"1\n"


async def test_pty_reports_a_terminal_and_its_size() -> None:
    spec = Spec(
        argv=["sh", "-c", "test -t 0 && test -t 1 && stty size && echo $TERM"],
        cwd="/",
        sandbox=DANGER,
        tty=True,
        size=(24, 91),
    )
    result = await process.run(spec)
    assert result.exit_code == 0
    assert result.stdout.replace(b"\r\n", b"\n").startswith(b"24 91\n")


async def test_stdin_write_and_close() -> None:
    spec = Spec(argv=["sh", "-c", "cat; echo done"], cwd="/", sandbox=DANGER, stdin=True)
    async with process.spawn(spec) as running:
        await running.write(b"abc")
        await running.close_stdin()
        result = await running.wait()
        with pytest.raises(process.StdinClosed):
            await running.write(b"more")
    assert result.stdout == b"abcdone\n"


async def test_timeout_kills_with_124() -> None:
    marker = f"31.{uuid.uuid4().int % 10**8}"
    spec = Spec(argv=["sh", "-c", f"sleep {marker} & wait"], cwd="/", sandbox=DANGER, timeout=0.2)
    result = await process.run(spec)
    assert (result.exit_code, result.timed_out) == (124, True)
    assert running_with(marker) == []


@pytest.mark.parametrize("sandbox", [DANGER, READ_ONLY])
async def test_cancelling_the_caller_kills_the_whole_group(sandbox: dict[str, str]) -> None:
    if sandbox is READ_ONLY:
        await require_bwrap()
    marker = f"32.{uuid.uuid4().int % 10**8}"
    started = trio.Event()

    async def on_output(stream: str, data: bytes, cap_reached: bool) -> None:
        started.set()

    spec = Spec(argv=["sh", "-c", f"sleep {marker} & echo up; wait"], cwd="/", sandbox=sandbox)
    with trio.CancelScope() as scope:
        async with process.spawn(spec, on_output) as running:
            await started.wait()
            assert running_with(marker)
            scope.cancel()
            await running.wait()
    assert running_with(marker) == []


async def test_terminate_gives_128_plus_signal() -> None:
    spec = Spec(argv=["sleep", "30"], cwd="/", sandbox=DANGER)
    async with process.spawn(spec) as running:
        assert running.running
        running.terminate()
        result = await running.wait()
    assert result.exit_code == 137
    assert running.exit_code == 137


async def test_a_missing_program_raises_before_anything_runs() -> None:
    with pytest.raises(FileNotFoundError):
        await process.run(Spec(argv=["/no/such/program"], cwd="/", sandbox=DANGER))
    with pytest.raises(ValueError, match="empty"):
        await process.run(Spec(argv=[], cwd="/", sandbox=DANGER))
    with pytest.raises(process.PolicyError):
        await process.run(Spec(argv=["true"], cwd="/", sandbox={"type": "bogus"}))


async def test_fail_closed_without_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(enforce.BWRAP_ENV, str(tmp_path / "missing-bwrap"))
    monkeypatch.delenv(enforce.ALLOW_ENV, raising=False)
    enforce.reset()
    try:
        with pytest.raises(process.SandboxUnavailable, match="bubblewrap"):
            await process.run(Spec(argv=["true"], cwd="/", sandbox=READ_ONLY))
        assert (await process.run(Spec(argv=["true"], cwd="/", sandbox=DANGER))).exit_code == 0
        enforce.configure(allow_unsandboxed=True)
        assert (await process.run(Spec(argv=["true"], cwd="/", sandbox=READ_ONLY))).exit_code == 0
    finally:
        enforce.reset()
