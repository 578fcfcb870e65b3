"""Results: machine facts, medians over repeats, tables (text and Markdown), the JSON file."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import orjson

from benchmarks.scenarios import Row, Scenario
from benchmarks.stats import median

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
TARGET_ORDER: Final = ("appserver", "codex")


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    try:
        load: list[float] | None = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "trio": _package_version("trio"),
        "trio_websocket": _package_version("trio-websocket"),
        "wsproto": _package_version("wsproto"),
        "orjson": _package_version("orjson"),
        "appserver": _package_version("appserver"),
        "loadavg_at_start": load,
    }


# -- aggregation ---------------------------------------------------------------------------------


def _group_key(scenario: Scenario, row: Row) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in scenario.keys)


def aggregate(scenario: Scenario, rows: Sequence[Row]) -> list[Row]:
    """One row per (keys, target): numeric fields are medians over repeats; others the first."""
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault((*_group_key(scenario, row), row.get("target")), []).append(row)
    out: list[Row] = []
    for group in groups.values():
        merged: Row = {}
        fields: list[str] = []
        for row in group:
            fields.extend(f for f in row if f not in fields)
        for field in fields:
            values = [row.get(field) for row in group]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if field == "repeat":
                merged["repeats"] = len(group)
            elif numbers and len(numbers) == len([v for v in values if v is not None]):
                merged[field] = median(numbers)
            else:
                merged[field] = next((v for v in values if v is not None), None)
        out.append(merged)
    return out


def _sorted(scenario: Scenario, rows: Iterable[Row]) -> list[Row]:
    order: dict[tuple[Any, ...], int] = {}
    result = list(rows)
    for row in result:
        order.setdefault(_group_key(scenario, row), len(order))

    def sort_key(row: Row) -> tuple[int, int]:
        target = row.get("target")
        rank = TARGET_ORDER.index(target) if target in TARGET_ORDER else len(TARGET_ORDER)
        return order[_group_key(scenario, row)], rank

    return sorted(result, key=sort_key)


# -- tables --------------------------------------------------------------------------------------


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        try:
            return fmt.format(value)
        except (ValueError, TypeError):
            return str(value)
    return str(value)


def table(scenario: Scenario, aggregated: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: key fields, target, each metric, and appserver/codex ratios."""
    rows = _sorted(scenario, aggregated)
    targets = {row.get("target") for row in rows}
    both = {"appserver", "codex"} <= targets
    header = [*scenario.keys, "target"]
    for column in scenario.columns:
        header.append(column.header)
        if both and column.ratio:
            header.append(f"{column.header} A/C")
    by_key: dict[tuple[Any, ...], dict[Any, Row]] = {}
    for row in rows:
        by_key.setdefault(_group_key(scenario, row), {})[row.get("target")] = row
    cells: list[list[str]] = []
    for row in rows:
        line = [_fmt(row.get(k), "{}") for k in scenario.keys] + [str(row.get("target"))]
        peers = by_key[_group_key(scenario, row)]
        for column in scenario.columns:
            line.append(_fmt(row.get(column.key), column.fmt))
            if both and column.ratio:
                ratio = ""
                codex = peers.get("codex", {}).get(column.key)
                mine = row.get(column.key)
                if row.get("target") == "appserver" and isinstance(mine, int | float) and codex:
                    ratio = f"{mine / codex:.2f}x"
                line.append(ratio)
        cells.append(line)
    return header, cells


def markdown_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in cells)
    return "\n".join(lines)


def text_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in header]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def scenario_section(
    scenario: Scenario, aggregated: Sequence[Row], errors: Sequence[str], *, markdown: bool
) -> str:
    parts = [f"### {scenario.title}" if markdown else f"== {scenario.title}"]
    if aggregated:
        header, cells = table(scenario, aggregated)
        parts.append(markdown_table(header, cells) if markdown else text_table(header, cells))
    if scenario.notes:
        parts.append(scenario.notes)
    for error in errors:
        parts.append(f"- error: {error}" if markdown else f"  error: {error}")
    return "\n\n".join(parts)


# -- files ---------------------------------------------------------------------------------------


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write_results(stamp: str, document: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{stamp}.json"
    md_path = RESULTS_DIR / f"{stamp}.md"
    json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    md_path.write_text(markdown)
    return json_path, md_path
