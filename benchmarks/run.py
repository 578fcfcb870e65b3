"""Command line and orchestration: scenarios x repeats x targets, interleaved A/B."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from benchmarks import report
from benchmarks.scenarios import Row, Scenario, all_scenarios
from benchmarks.servers import (
    DEFAULT_CODEX,
    Target,
    appserver_target,
    codex_target,
    codex_version,
    kill_all,
)
from benchmarks.settings import Settings


def parser(names: Sequence[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark appserver (and Codex's app-server) over stdio, unix and ws.",
        allow_abbrev=False,
    )
    p.add_argument("--quick", action="store_true", help="short run (< 2 min)")
    p.add_argument(
        "--target",
        choices=("appserver", "codex", "both"),
        default="both",
        help="which server(s); both = appserver and codex interleaved (default; codex only "
        "if its binary exists)",
    )
    p.add_argument("--repeat", type=int, default=None, help="repeats (default 3, quick 1)")
    p.add_argument(
        "--scenario", nargs="+", choices=names, default=None, metavar="NAME", help=str(names)
    )
    p.add_argument("--duration", type=float, default=None, help="scenario 1 measured seconds")
    p.add_argument("--warmup", type=float, default=None, help="scenario 1 warm-up seconds")
    p.add_argument("--codex", type=Path, default=DEFAULT_CODEX, help="the codex binary")
    p.add_argument(
        "--codex-cmd",
        default=None,
        metavar="TEMPLATE",
        help='command template, default "{codex} app-server --listen {listen}"',
    )
    p.add_argument(
        "--appserver-cmd",
        default=None,
        metavar="TEMPLATE",
        help='command template, default "{appserver} app-server --listen {listen}"',
    )
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    return p


def settings_from(options: argparse.Namespace) -> Settings:
    settings = Settings.quick_run() if options.quick else Settings.full()
    changes: dict[str, Any] = {}
    if options.repeat is not None:
        changes["repeat"] = max(1, options.repeat)
    if options.duration is not None:
        changes["duration"] = options.duration
    if options.warmup is not None:
        changes["warmup"] = options.warmup
    if changes:
        settings = Settings(**{**settings.__dict__, **changes})
    return settings


def targets_from(options: argparse.Namespace) -> list[Target]:
    targets: list[Target] = []
    if options.target in ("appserver", "both"):
        targets.append(appserver_target(options.appserver_cmd, options.codex))
    if options.target in ("codex", "both"):
        if options.codex_cmd is None and not options.codex.exists():
            if options.target == "codex":
                raise SystemExit(f"codex binary not found: {options.codex}")
            print(f"note: {options.codex} not found; running appserver only", file=sys.stderr)
        else:
            targets.append(codex_target(options.codex, options.codex_cmd))
    return targets


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_scenario(
    scenario: Scenario, targets: Sequence[Target], settings: Settings
) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    errors: list[str] = []
    for repeat in range(settings.repeat):
        for target in targets:
            if not target.is_appserver and not scenario.codex_ok:
                continue
            started = time.perf_counter()
            load1 = os.getloadavg()[0]
            label = f"[{scenario.name}] repeat {repeat + 1}/{settings.repeat} {target.name}"
            log(f"{label} ...")
            try:
                with trio.fail_after(scenario.budget(settings)):
                    got = await scenario.run_once(target, settings)
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                errors.append(f"{target.name} repeat {repeat + 1}: {detail}")
                log(f"{label} FAILED: {detail}")
                traceback.print_exc(file=sys.stderr)
                continue
            for row in got:
                row["target"] = target.name
                row["repeat"] = repeat + 1
                row["load1_at_start"] = load1
            rows.extend(got)
            log(f"{label} done in {time.perf_counter() - started:.1f} s")
    return rows, errors


async def run_all(
    scenarios: Sequence[Scenario], targets: Sequence[Target], settings: Settings
) -> dict[str, tuple[list[Row], list[str]]]:
    results: dict[str, tuple[list[Row], list[str]]] = {}
    for scenario in scenarios:
        rows, errors = await run_scenario(scenario, targets, settings)
        results[scenario.name] = (rows, errors)
        aggregated = report.aggregate(scenario, rows)
        print(report.scenario_section(scenario, aggregated, errors, markdown=False), flush=True)
        print(flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    scenarios = all_scenarios()
    names = [s.name for s in scenarios]
    options = parser(names).parse_args(argv)
    settings = settings_from(options)
    targets = targets_from(options)
    chosen = [s for s in scenarios if options.scenario is None or s.name in options.scenario]
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else "python"
    command = shlex.join([python, "-m", "benchmarks", *(argv or sys.argv[1:])])
    machine = report.machine_info()
    if any(not t.is_appserver for t in targets):
        machine["codex"] = codex_version(options.codex)
    stamp = report.timestamp()
    started = time.perf_counter()
    log(
        f"benchmarks: {', '.join(s.name for s in chosen)} x {[t.name for t in targets]}, "
        f"repeat {settings.repeat}{' (quick)' if settings.quick else ''}"
    )
    try:
        results = trio.run(run_all, chosen, targets, settings)
    finally:
        kill_all()
    elapsed = time.perf_counter() - started
    document: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": command,
        "elapsed_seconds": elapsed,
        "machine": machine,
        "settings": settings.__dict__,
        "targets": {t.name: t.template for t in targets},
        "scenarios": {},
    }
    sections = [
        f"Date: {document['date']}  \nCommand: `{command}`  \nWall time: {elapsed:.0f} s",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()),
    ]
    for scenario in chosen:
        rows, errors = results[scenario.name]
        aggregated = report.aggregate(scenario, rows)
        document["scenarios"][scenario.name] = {
            "title": scenario.title,
            "keys": list(scenario.keys),
            "medians": aggregated,
            "runs": rows,
            "errors": errors,
        }
        sections.append(report.scenario_section(scenario, aggregated, errors, markdown=True))
    markdown = "\n\n".join(sections) + "\n"
    if not options.no_write:
        json_path, md_path = report.write_results(stamp, document, markdown)
        log(f"wrote {json_path} and {md_path}")
    log(f"total {elapsed:.0f} s")
    return 1 if any(results[s.name][1] for s in chosen) else 0
