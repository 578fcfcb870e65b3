"""Profile appserver under a benchmark load with py-spy (installed anywhere, not in this venv).

    .venv/bin/python -m benchmarks.profiling --py-spy /tmp/pyspy/bin/py-spy --load rpc
    .venv/bin/python -m benchmarks.profiling --py-spy /tmp/pyspy/bin/py-spy --load broadcast

`rpc`: `windowsSandbox/readiness`, 10 unix clients, closed loop. `broadcast`: flood turns of
256 B deltas to one unix subscriber. py-spy records the server for `--seconds` (raw collapsed
stacks; `--svg` adds a second run recording a flame graph); the top functions by own and by
total samples are printed, as shares of all non-idle samples.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

from benchmarks.client import close_all, measure_load
from benchmarks.flood import flood, flood_args, open_subscribers, start_thread
from benchmarks.scenarios.rpc import open_socket_channels
from benchmarks.servers import Server, appserver_target, running

#: Leaf frames that are waiting, not working: an idle trio worker thread, and epoll_wait.
IDLE_WORKER: Final = "WorkerThread._work (trio/_core/_thread_cache.py)"
EPOLL_WAIT: Final = "EpollIOManager.get_events (trio/_core/_io_epoll.py)"


@dataclass
class Profile:
    samples: int
    idle_worker: int
    epoll_wait: int
    own: collections.Counter[str]
    total: collections.Counter[str]

    @property
    def busy(self) -> int:
        """Samples doing work: all but idle workers and the loop waiting in epoll."""
        return self.samples - self.idle_worker - self.epoll_wait


def read_profile(raw: Path) -> Profile:
    """py-spy's raw (collapsed) stacks: own and inclusive samples per function."""
    profile = Profile(0, 0, 0, collections.Counter(), collections.Counter())
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        hits = int(number)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        profile.samples += hits
        if frames[-1] == IDLE_WORKER:
            profile.idle_worker += hits
            continue
        if frames[-1] == EPOLL_WAIT:
            profile.epoll_wait += hits
            continue
        profile.own[frames[-1]] += hits
        for frame in set(frames):
            profile.total[frame] += hits
    return profile


async def _rpc_load(server: Server, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        channels = await open_socket_channels(nursery, server, 10)
        result = await measure_load(
            channels, 1, warmup=0.5, duration=seconds, server_cpu=server.cpu
        )
        print(f"load: {result.rate:.0f} req/s, server CPU {100 * (result.server_cpu or 0):.0f}%")
        await close_all(channels)
        nursery.cancel_scope.cancel()


async def _broadcast_load(server: Server, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        channels = await open_subscribers(nursery, server, 1)
        thread_id = await start_thread(channels[0], ephemeral=True)
        per_turn = 10000
        turns = 100  # cut by the time limit
        result = await flood(
            server, channels[0], channels, thread_id, per_turn, 256, time_limit=seconds, turns=turns
        )
        rates = result.rates()
        print(f"load: {rates[0] if rates else 0:.0f} deltas/s to one subscriber")
        await close_all(channels)
        nursery.cancel_scope.cancel()


def raw_path(out: Path) -> Path:
    return out.with_suffix(".txt")


async def profile(
    py_spy: Path,
    load: str,
    seconds: float,
    out: Path,
    rate: int,
    *,
    svg: bool = False,
    nonblocking: bool = False,
    gil: bool = False,
) -> None:
    extra = flood_args("--log-level", "WARNING") if load == "broadcast" else []
    async with running(appserver_target(), "unix", extra=extra) as server:
        common = [os.fspath(py_spy), "record", "--pid", str(server.pid), "--rate", str(rate)]
        common += ["--duration", str(int(seconds))]
        if nonblocking:
            common.append("--nonblocking")
        if gil:
            common.append("--gil")
        fmt, path = ("flamegraph", out.with_suffix(".svg")) if svg else ("raw", raw_path(out))
        args = [*common, "--format", fmt, "-o", os.fspath(path)]
        if not svg:
            args.append("--nolineno")
        async with trio.open_nursery() as nursery:

            async def record() -> None:
                await trio.run_process(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            nursery.start_soon(record)
            await trio.sleep(0.3)
            if load == "rpc":
                await _rpc_load(server, seconds + 1)
            else:
                await _broadcast_load(server, seconds + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", allow_abbrev=False)
    parser.add_argument("--py-spy", type=Path, required=True)
    parser.add_argument("--load", choices=("rpc", "broadcast"), default="rpc")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--out", type=Path, default=None, help="output stem (.txt, .svg)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--svg", action="store_true", help="also record a flame graph (2nd run)")
    parser.add_argument(
        "--nonblocking", action="store_true", help="sample without pausing the server"
    )
    parser.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL (Python CPU time)"
    )
    options = parser.parse_args(argv)
    out = options.out or Path(f"/tmp/appserver-profile-{options.load}")
    job = functools.partial(
        profile,
        options.py_spy,
        options.load,
        options.seconds,
        out,
        options.rate,
        nonblocking=options.nonblocking,
        gil=options.gil,
    )
    trio.run(job)
    if options.svg:
        trio.run(functools.partial(job, svg=True))
    raw = raw_path(out)
    if not raw.exists():
        print(f"py-spy wrote nothing at {raw}", file=sys.stderr)
        return 1
    found = read_profile(raw)
    busy = max(found.busy, 1)
    print(
        f"{found.samples} samples in {raw}: {found.busy} busy, {found.epoll_wait} in "
        f"epoll_wait, {found.idle_worker} in idle worker threads; shares are of busy samples"
    )
    print("\nby own samples:")
    for frame, hits in found.own.most_common(options.top):
        print(f"  {100 * hits / busy:5.1f}%  {frame}")
    print("\nby total samples (inclusive):")
    for frame, hits in found.total.most_common(options.top):
        print(f"  {100 * hits / busy:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
