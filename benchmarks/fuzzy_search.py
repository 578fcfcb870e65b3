"""fuzzyFileSearch over a generated 100k-file git tree: appserver and Codex side by side, with
`rg --files | fzf --filter` as the baseline.

    python -m benchmarks.fuzzy_search [--files 100000] [--repeats 5] [--no-codex]

The tree (deterministic: file names of 1-3 words from a 40-word list, 5-25 files a directory,
6 levels) is generated once under the temp directory and reused; it is a git repository whose
`.gitignore` hides a `build/` of 500 files. Every server runs over stdio in its own home, the
Codex binary from `../shared/peers/setup.sh` when it is installed. Per query:

- one-shot `fuzzyFileSearch`, cold: the server has not listed the tree for
  `INDEX_REUSE_SECONDS` (Codex always walks; appserver then walks too);
- one-shot, warm: the same query again at once (appserver reuses its listing for 3 s);
- session: `sessionStart` once (time until its `sessionCompleted`: the listing), then per
  query `sessionUpdate` → the first `sessionUpdated` with files ("first results") and the
  `sessionCompleted` ("full query");
- baseline: `rg --files | fzf --filter QUERY` in the root (a walk and a match per run).

Medians over `--repeats`; a table on stdout and JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.client import LineChannel
from benchmarks.servers import DEFAULT_CODEX, Target, appserver_target, codex_target, running

QUERIES: Final = ("main", "hndlr", "conf main", "srcmain", "a")
WORDS: Final = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "config",
    "server",
    "client",
    "handler",
    "router",
    "model",
    "view",
    "util",
    "core",
    "api",
    "test",
    "spec",
    "index",
    "main",
    "lib",
    "data",
    "cache",
    "store",
    "event",
    "stream",
    "queue",
    "worker",
    "task",
    "pool",
    "auth",
    "user",
    "session",
    "token",
    "parser",
    "lexer",
    "render",
    "layout",
    "widget",
    "theme",
]
EXTENSIONS: Final = [".py", ".rs", ".ts", ".js", ".md", ".json", ".toml", ".txt", ".go", ".c", ".h"]
#: appserver reuses a one-shot listing this long (appserver.fs.search_sessions).
INDEX_REUSE_SECONDS: Final = 3.0
RESULTS_DIR: Final = Path(__file__).parent / "results"


def generate_tree(root: Path, count: int) -> Path:
    marker = root / ".generated"
    if marker.exists() and marker.read_text() == str(count):
        return root
    rng = random.Random(42)
    made = 0

    def fill(depth: int, path: Path) -> None:
        nonlocal made
        for _ in range(rng.randint(5, 25)):
            if made >= count:
                return
            name = "_".join(rng.sample(WORDS, rng.randint(1, 3))) + rng.choice(EXTENSIONS)
            if not (path / name).exists():
                (path / name).touch()
                made += 1
        if depth < 6:
            for _ in range(rng.randint(2, 6)):
                child = path / f"{rng.choice(WORDS)}{rng.randint(0, 99)}"
                child.mkdir(exist_ok=True)
                if made < count:
                    fill(depth + 1, child)

    root.mkdir(parents=True, exist_ok=True)
    while made < count:
        fill(0, root)
    (root / "build").mkdir(exist_ok=True)
    for i in range(500):
        (root / "build" / f"out{i}.o").touch()
    (root / ".gitignore").write_text("build/\n.generated\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    marker.write_text(str(count))
    return root


class Rpc:
    def __init__(self, channel: LineChannel) -> None:
        self.channel = channel
        self.next_id = 0

    async def request(self, method: str, params: Any) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        await self.channel.send(json.dumps(message))
        return self.next_id

    async def next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.channel.receive())
        return message

    async def until(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            message = await self.next()
            if match(message):
                return message

    def drain(self) -> None:
        """Forget what was read but not yet looked at (late notifications of an older query)."""
        self.channel._lines, self.channel._next = [], 0

    async def call(self, method: str, params: Any) -> Any:
        request_id = await self.request(method, params)
        reply = await self.until(lambda m: m.get("id") == request_id and "method" not in m)
        assert "result" in reply, reply
        return reply["result"]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def measure_server(target: Target, root: str, repeats: int) -> dict[str, Any]:
    async with running(target, "stdio") as server:
        process = server.process
        assert process.stdin is not None
        assert process.stdout is not None
        rpc = Rpc(LineChannel(process.stdin, process.stdout))
        await rpc.call(
            "initialize",
            {
                "clientInfo": {"name": "bench", "version": "1"},
                "capabilities": {"experimentalApi": True},
            },
        )
        out: dict[str, Any] = {"one_shot_cold": {}, "one_shot_warm": {}, "first": {}, "full": {}}
        for query in QUERIES:
            cold, warm = [], []
            for _ in range(max(1, repeats // 2)):
                await trio.sleep(INDEX_REUSE_SECONDS + 0.2)
                for bucket in (cold, warm):
                    started = time.perf_counter()
                    await rpc.call("fuzzyFileSearch", {"query": query, "roots": [root]})
                    bucket.append(time.perf_counter() - started)
            out["one_shot_cold"][query] = median_ms(cold)
            out["one_shot_warm"][query] = median_ms(warm)

        def session_event(session_id: str, method: str) -> Callable[[dict[str, Any]], bool]:
            return lambda m: m.get("method") == method and m["params"]["sessionId"] == session_id

        started = time.perf_counter()
        await rpc.call("fuzzyFileSearch/sessionStart", {"sessionId": "b", "roots": [root]})
        await rpc.until(session_event("b", "fuzzyFileSearch/sessionCompleted"))
        out["session_listing_ms"] = (time.perf_counter() - started) * 1000
        for query in QUERIES:
            first, full = [], []
            for _ in range(repeats):
                await trio.sleep(0.3)  # let the previous query's stragglers arrive first
                rpc.drain()
                started = time.perf_counter()
                await rpc.request(
                    "fuzzyFileSearch/sessionUpdate", {"sessionId": "b", "query": query}
                )
                got_files = completed = None
                # Codex may send sessionCompleted before its last sessionUpdated: wait for both.
                while got_files is None or completed is None:
                    message = await rpc.next()
                    params = message.get("params") or {}
                    now = time.perf_counter() - started
                    if message.get("method") == "fuzzyFileSearch/sessionUpdated":
                        if params.get("query") == query and params.get("files"):
                            got_files = got_files if got_files is not None else now
                    elif message.get("method") == "fuzzyFileSearch/sessionCompleted":
                        completed = now
                first.append(got_files)
                full.append(max(completed, got_files))
            out["first"][query] = median_ms(first)
            out["full"][query] = median_ms(full)
        await rpc.call("fuzzyFileSearch/sessionStop", {"sessionId": "b"})
        return out


def measure_baseline(root: str, repeats: int) -> dict[str, float]:
    out = {}
    for query in QUERIES:
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run(
                f"rg --files --hidden --glob '!.git' | fzf --filter {query!r} | head -50",
                shell=True,
                cwd=root,
                check=True,
                capture_output=True,
            )
            samples.append(time.perf_counter() - started)
        out[query] = median_ms(samples)
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        "| query | target | one-shot cold | one-shot warm | session: first results | "
        "session: full query |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for query in QUERIES:
        for name, data in results["servers"].items():
            lines.append(
                f"| `{query}` | {name} | {data['one_shot_cold'][query]:.0f} ms "
                f"| {data['one_shot_warm'][query]:.0f} ms | {data['first'][query]:.0f} ms "
                f"| {data['full'][query]:.0f} ms |"
            )
        baseline = results["baseline"][query]
        lines.append(f"| `{query}` | rg --files \\| fzf --filter | {baseline:.0f} ms | | | |")
    listing = ", ".join(
        f"{name} {data['session_listing_ms']:.0f} ms" for name, data in results["servers"].items()
    )
    lines.append("")
    lines.append(f"Session listing (sessionStart → sessionCompleted): {listing}.")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    root = str(generate_tree(Path(tempfile.gettempdir()) / f"bench-fuzzy-{args.files}", args.files))
    targets = [appserver_target()]
    if not args.no_codex and DEFAULT_CODEX.exists():
        targets.append(codex_target())
    results: dict[str, Any] = {"files": args.files, "root": root, "servers": {}}
    for target in targets:
        results["servers"][target.name] = await measure_server(target, root, args.repeats)
    results["baseline"] = measure_baseline(root, args.repeats)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS_DIR / f"fuzzy-{stamp}.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-codex", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("APPSERVER_LOG", "WARNING")
    trio.run(main_async, args)


if __name__ == "__main__":
    main()
