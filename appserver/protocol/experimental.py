"""The experimental API surface and the gating rules (spec `experimental.md`).

Experimental params fields are marked in attrs metadata (`wire.converter.EXPERIMENTAL`); an
experimental value in a request is refused for a client without `experimentalApi`, and stripped
from what is sent to such a client.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import attrs

from appserver.wire.converter import EXPERIMENTAL, wire_name

#: Server notifications that only `experimentalApi` clients receive. Codex 0.169's schema has none;
#: the router takes the set as a parameter so the rule stays in force when one appears.
EXPERIMENTAL_NOTIFICATIONS: Final[frozenset[str]] = frozenset()


#: attrs metadata key of an experimental plain `bool` field (Codex gates a `bool` only when it is
#: `true`, an `Option` whenever it is present): `false` is then accepted without the capability.
GATED_WHEN_TRUE: Final = "appserver.experimental_gated_when_true"


def requires_capability_message(reason: str) -> str:
    return f"{reason} requires experimentalApi capability"


def _experimental_fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    found = _fields_cache.get(cls)
    if found is None:
        found = _fields_cache[cls] = tuple(
            f for f in attrs.fields(cls) if f.metadata.get(EXPERIMENTAL)
        )
    return found


_fields_cache: dict[type, tuple[attrs.Attribute[Any], ...]] = {}


def experimental_field_in_use(method: str, params: Any) -> str | None:
    """`method.field` for the first experimental field set to a non-null value (a plain bool
    field: to `true`), else None.

    A params class may also define `experimental_reason()` for values that are experimental
    whatever field carries them (Codex's `askForApproval.granular`).
    """
    if params is None or not attrs.has(type(params)):
        return None
    custom = getattr(params, "experimental_reason", None)
    if custom is not None:
        reason: str | None = custom()
        if reason is not None:
            return reason
    for field in _experimental_fields(type(params)):
        value = getattr(params, field.name)
        if value is None or (value is False and field.metadata.get(GATED_WHEN_TRUE)):
            continue
        return f"{method}.{wire_name(field)}"
    return None


@functools.cache
def _may_carry_experimental(cls: type) -> bool:
    return any(f.metadata.get(EXPERIMENTAL) for f in attrs.fields(cls)) or any(
        isinstance(f.type, type) and attrs.has(f.type) and _may_carry_experimental(f.type)
        for f in attrs.fields(cls)
    )


def strip_experimental(value: Any) -> Any:
    """A copy of an attrs value with every experimental field (at any depth) set to None."""
    cls = type(value)
    if not attrs.has(cls) or not _may_carry_experimental(cls):
        return value
    changes: dict[str, Any] = {}
    for field in attrs.fields(cls):
        current = getattr(value, field.name)
        if field.metadata.get(EXPERIMENTAL):
            if current is not None:
                changes[field.name] = None
        elif attrs.has(type(current)):
            stripped = strip_experimental(current)
            if stripped is not current:
                changes[field.name] = stripped
    return attrs.evolve(value, **changes) if changes else value
