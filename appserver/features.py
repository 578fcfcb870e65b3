"""Feature flags: the names Codex 0.169 knows (its `experimentalFeature/list` registry, shipped
as `codex_features.json`), their stages and defaults, and whether the configuration enables
each (`features.<name>` in config.toml, `--enable`/`--disable`, `experimentalFeature/
enablement/set`).

appserver keeps the registry so that toggles round-trip as in Codex and `--enable X` refuses an
unknown X as Codex does; none of these features changes what appserver itself does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any


@functools.cache
def registry() -> tuple[dict[str, Any], ...]:
    """Each feature's `name`, `stage`, `displayName`, `description`, `announcement` and
    `defaultEnabled`, in Codex's order."""
    import importlib.resources

    text = importlib.resources.files("appserver").joinpath("codex_features.json").read_text()
    features: list[dict[str, Any]] = json.loads(text)
    return tuple(features)


def known(name: str) -> bool:
    return any(feature["name"] == name for feature in registry())


def unknown_among(names: list[str] | tuple[str, ...]) -> str | None:
    """The first name that is not a known feature, else None."""
    return next((name for name in names if not known(name)), None)


def listed(configured: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The registry as `ExperimentalFeature`s, `enabled` from `configured` (the effective
    `features` table) or else the default."""
    out = []
    for feature in registry():
        value = configured.get(feature["name"])
        enabled = value if isinstance(value, bool) else feature["defaultEnabled"]
        out.append({**feature, "enabled": enabled})
    return out
