"""Scenario 4: startup, and a concurrent launch storm.

Per launch: exec → the listener accepts a connection → WebSocket 101 → first `initialize`
reply, RSS at that point, SIGTERM → exit. Modes: unix:// and ws://127.0.0.1:0, each with a fresh
home per launch and with one reused home (primed by an unmeasured launch). Storm: N concurrent
`--listen unix://` launches on one fresh home; the time until one server answers `initialize`,
and whether every other launch exited 1 while exactly one kept running.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.client import Rpc, connect_unix, open_ws
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import (
    POLL_SECONDS,
    Server,
    Target,
    control_socket,
    new_home,
    running,
    server_env,
    spawn,
)
from benchmarks.stats import median

MODES: Final = (("unix", "fresh"), ("unix", "reused"), ("ws", "fresh"), ("ws", "reused"))
STORM_TIMEOUT: Final = 60.0
LOSER_EXIT_TIMEOUT: Final = 30.0


async def handshake_times(server: Server) -> dict[str, float | None]:
    """Connect (polling), upgrade, initialize; seconds since exec for each, and RSS."""
    with trio.fail_after(30):
        stream = await server.connect()
        accepted = time.perf_counter() - server.t_exec
        async with trio.open_nursery() as nursery:
            channel = await open_ws(nursery, stream)
            upgraded = time.perf_counter() - server.t_exec
            await Rpc(channel).initialize("bench-startup")
            initialized = time.perf_counter() - server.t_exec
            rss = server.rss()
            await channel.aclose()
            nursery.cancel_scope.cancel()
    return {
        "accept_s": accepted,
        "upgrade_s": upgraded,
        "init_s": initialized,
        "rss_mb": None if rss is None else rss / 1e6,
    }


async def storm_handshake(path: Path, since: float) -> dict[str, float]:
    """Whoever listens at `path`: poll until it accepts, then upgrade and initialize."""
    while True:
        try:
            stream = await connect_unix(path)
            break
        except OSError:
            await trio.sleep(POLL_SECONDS)
    accepted = time.perf_counter() - since
    async with trio.open_nursery() as nursery:
        channel = await open_ws(nursery, stream)
        upgraded = time.perf_counter() - since
        await Rpc(channel).initialize("bench-storm")
        initialized = time.perf_counter() - since
        await channel.aclose()
        nursery.cancel_scope.cancel()
    return {"accept_s": accepted, "upgrade_s": upgraded, "init_s": initialized}


INITIALIZE_LINE: Final = (
    b'{"id":1,"method":"initialize","params":{"clientInfo":{"name":"bench-join",'
    b'"version":"1.0.0"}}}\n'
)


async def first_reply_seconds(argv: list[str], home: Path) -> float:
    """exec `argv` (a JSON-lines client endpoint), send `initialize`: seconds to the reply line."""
    started = time.perf_counter()
    process = await trio.lowlevel.open_process(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env(home),
        cwd=os.fspath(home),
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        with trio.fail_after(30):
            await process.stdin.send_all(INITIALIZE_LINE)
            seen = b""
            while b"\n" not in seen:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"{argv[0]} exited before answering initialize")
                seen += chunk
            elapsed = time.perf_counter() - started
            await process.stdin.aclose()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return elapsed


async def join_row(target: Target, launches: int) -> Row:
    """appserver: `appserver attach` joining a warm unix server; Codex: starting itself on
    stdio (it has no JSON-lines way to join a running server), on a reused home."""
    home = new_home()
    times = []
    try:
        if target.is_appserver:
            async with running(target, "unix", home=home) as server:
                assert server.socket_path is not None
                appserver = shlex.split(target.placeholders["appserver"])
                argv = [*appserver, "attach", "--sock", os.fspath(server.socket_path)]
                await first_reply_seconds(argv, home)  # unmeasured, like the reused-home primer
                for _ in range(launches):
                    times.append(await first_reply_seconds(argv, home))
            mode = "join: attach to a warm server"
        else:
            argv = target.argv("stdio://", home)
            await first_reply_seconds(argv, home)
            for _ in range(launches):
                times.append(await first_reply_seconds(argv, home))
            mode = "join: attach to a warm server"
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "mode": mode,
        "init_s": median(times),
        "init_s_min": min(times),
        "init_s_max": max(times),
        "launches": len(times),
    }


async def until_one_left(servers: list[Server]) -> None:
    """Until at most one of `servers` is still running."""
    running = [sum(1 for s in servers if s.process.returncode is None)]
    if running[0] <= 1:
        return
    async with trio.open_nursery() as nursery:

        async def watch(server: Server) -> None:
            await server.process.wait()
            running[0] -= 1
            if running[0] <= 1:
                nursery.cancel_scope.cancel()

        for server in servers:
            if server.process.returncode is None:
                nursery.start_soon(watch, server)


async def one_launch(target: Target, transport: str, home: Path) -> dict[str, Any]:
    server = await spawn(target, transport, home)
    try:
        times = await handshake_times(server)
    finally:
        rc, stop_seconds = await server.stop()
    return {**times, "sigterm_exit_ms": stop_seconds * 1000, "rc": rc}


class Startup(Scenario):
    name = "startup"
    title = "4. Startup: exec → accepting → 101 → initialize reply; launch storm"
    keys = ("mode",)
    columns = (
        Column("accept_s", "exec→accept s", "{:.3f}", ratio=True),
        Column("upgrade_s", "exec→101 s", "{:.3f}"),
        Column("init_s", "exec→initialize s", "{:.3f}", ratio=True),
        Column("rss_mb", "RSS at ready MB", "{:.1f}"),
        Column("sigterm_exit_ms", "SIGTERM→exit ms", "{:.0f}"),
        Column("exit_codes", "exit codes"),
    )
    notes = (
        "Join row: exec -> first `initialize` reply line on stdout, for a JSON-lines client: "
        "appserver's `attach` joining a running unix server (the way SDKs share one), against "
        "Codex starting its own `app-server --listen stdio://` on a reused home. "
        "Storm row: `exec→initialize` is from the first exec until one server answered "
        "`initialize`; `exit codes` counts the launches' exit statuses (`running` = still "
        "serving when the others had exited); the winner is then stopped with SIGTERM."
    )

    def budget(self, settings: Any) -> float:
        return 300.0

    async def run_once(self, target: Target, settings: Any) -> list[Row]:
        rows: list[Row] = []
        for transport, home_kind in MODES:
            launches = []
            reused = new_home() if home_kind == "reused" else None
            try:
                if reused is not None:
                    await one_launch(target, transport, reused)  # primes the home
                for _ in range(settings.startup_launches):
                    home = reused or new_home()
                    try:
                        launches.append(await one_launch(target, transport, home))
                    finally:
                        if reused is None:
                            shutil.rmtree(home, ignore_errors=True)
            finally:
                if reused is not None:
                    shutil.rmtree(reused, ignore_errors=True)
            row: Row = {"mode": f"{transport}, {home_kind} home", "launches": len(launches)}
            for field in ("accept_s", "upgrade_s", "init_s", "rss_mb", "sigterm_exit_ms"):
                values = [launch[field] for launch in launches]
                row[field] = median(values)
                numbers = [v for v in values if v is not None]
                if numbers:
                    row[f"{field}_min"], row[f"{field}_max"] = min(numbers), max(numbers)
            codes = Counter(str(launch["rc"]) for launch in launches)
            row["exit_codes"] = _codes(codes)
            rows.append(row)
        rows.append(await join_row(target, max(3, settings.startup_launches)))
        rows.append(await self._storm(target, settings.storm_width))
        return rows

    async def _storm(self, target: Target, width: int) -> Row:
        home = new_home()
        servers: list[Server] = []
        try:
            for index in range(width):
                servers.append(
                    await spawn(target, "unix", home, stderr_name=f"storm-{index}.stderr")
                )
            first_exec = servers[0].t_exec
            spawned_in = servers[-1].t_exec - first_exec
            with trio.fail_after(STORM_TIMEOUT):
                times = await storm_handshake(control_socket(home), first_exec)
            ready = times["init_s"]
            with trio.move_on_after(LOSER_EXIT_TIMEOUT):
                await until_one_left(servers)
            settled = time.perf_counter() - first_exec
            alive = [s for s in servers if s.process.poll() is None]
            codes = Counter(
                "running" if s.process.returncode is None else str(s.process.returncode)
                for s in servers
            )
            losers = [s for s in servers if s.process.returncode is not None]
            winner_rss = alive[0].rss() if len(alive) == 1 else None
            rss = winner_rss / 1e6 if winner_rss else None
            refusals = sum(
                1 for s in losers if "already in use" in s.stderr_text() and s.process.returncode
            )
        finally:
            for server in servers:
                await server.stop()
            shutil.rmtree(home, ignore_errors=True)
        ok = len(alive) == 1 and all(s.process.returncode == 1 for s in losers)
        return {
            "mode": f"storm: {width} x unix://, one fresh home",
            "init_s": ready,
            "accept_s": times["accept_s"],
            "upgrade_s": times["upgrade_s"],
            "rss_mb": rss,
            "exit_codes": _codes(codes),
            "storm_ok": ok,
            "storm_alive": len(alive),
            "storm_in_use_refusals": refusals,
            "storm_settled_s": settled,
            "storm_spawn_s": spawned_in,
        }


def _codes(codes: Counter[str]) -> str:
    return ", ".join(f"{count}x{code}" for code, count in sorted(codes.items()))
