"""The one cattrs converter of the package (orjson preconf).

Wire names are camelCase, made from the attrs field name unless a field's metadata names it.
Input is strict about JSON types (a number is never a string), ignores unknown keys and treats
`null` as absent for every field that has a default. Output omits a `None` field only when its
metadata says so (the schema's optional fields); otherwise `None` is written as `null` (the
schema's required-but-nullable fields).
"""

from __future__ import annotations

import decimal
import enum
import typing
from collections.abc import Callable
from typing import Any, Final, TypeVar, get_args, get_origin

import attrs
from cattrs import ClassValidationError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.orjson import OrjsonConverter, make_converter

T = TypeVar("T")

WIRE_NAME: Final = "appserver.wire_name"
OMIT_IF_NONE: Final = "appserver.omit_if_none"
EXPERIMENTAL: Final = "appserver.experimental"

#: `attrs.field(default=None, metadata=OPTIONAL)`: omitted from output when None.
OPTIONAL: Final = {OMIT_IF_NONE: True}
#: An experimental optional field: gated on input, stripped on output for stable clients.
EXPERIMENTAL_OPTIONAL: Final = {OMIT_IF_NONE: True, EXPERIMENTAL: True}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    return str(field.metadata.get(WIRE_NAME) or camel(field.name))


class WireTypeError(TypeError):
    """A JSON value of the wrong type, phrased as serde phrases it."""

    def __init__(self, value: Any, expected: str) -> None:
        super().__init__(f"invalid type: {describe_json(value)}, expected {expected}")


def expected_one_of(variants: typing.Iterable[Any]) -> str:
    """serde's `OneOf`: "`a`", "`a` or `b`", or "one of `a`, `b`, `c`"."""
    names = [f"`{v}`" for v in variants]
    if not names:
        return "there are no variants"
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} or {names[1]}"
    return "one of " + ", ".join(names)


class UnknownVariantError(ValueError):
    def __init__(self, value: Any, variants: typing.Iterable[Any]) -> None:
        super().__init__(f"unknown variant `{value}`, expected {expected_one_of(variants)}")


_RUST_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def rust_debug_str(text: str) -> str:
    """A string as Rust's `{:?}` writes it (serde quotes strings that way in errors)."""
    out = []
    for ch in text:
        if ch in _RUST_ESCAPES:
            out.append(_RUST_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def rust_float(value: float) -> str:
    """A float as serde's `Unexpected::Float` writes it: plain decimal, with a `.0` if whole."""
    text = format(decimal.Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def describe_json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{rust_float(value)}`"
    if isinstance(value, str):
        return f"string {rust_debug_str(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def describe_structure_error(exc: BaseException) -> str:
    """The first leaf of a cattrs validation error, as a serde-style message."""
    while isinstance(exc, ClassValidationError | IterableValidationError) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, KeyError):
        return f"missing field `{exc.args[0]}`"
    return str(exc)


def _strict(kind: type, expected: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise WireTypeError(value, expected)
        return value

    return structure


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise WireTypeError(value, "f64")


_COLLECTIONS: dict[Any, Callable[[list[Any]], Any]] = {frozenset: frozenset, set: set, tuple: tuple}


def _is_list(t: Any) -> bool:
    return get_origin(t) in (list, typing.Sequence, frozenset, set, tuple) and len(get_args(t)) >= 1


def _is_dict(t: Any) -> bool:
    return get_origin(t) in (dict, typing.Mapping)


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _is_literal(t: Any) -> bool:
    return get_origin(t) is typing.Literal


def _build() -> OrjsonConverter:
    conv = make_converter(detailed_validation=True, forbid_extra_keys=False)

    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "i64"))
    conv.register_structure_hook(bool, _strict(bool, "a boolean"))
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(typing.Any, lambda value, _: value)

    def list_factory(t: Any) -> Callable[[Any, Any], Any]:
        (elem,) = get_args(t)[:1]
        origin = get_origin(t)
        make: Callable[[list[Any]], Any] = (
            frozenset
            if origin is frozenset
            else set
            if origin is set
            else tuple
            if origin is tuple
            else list
        )
        elem_hook = conv.get_structure_hook(elem)

        def structure(value: Any, _: Any) -> Any:
            if type(value) is not list:
                raise WireTypeError(value, "a sequence")
            return make([elem_hook(item, elem) for item in value])

        return structure

    def dict_factory(t: Any) -> Callable[[Any, Any], Any]:
        args = get_args(t)
        val_t = args[1] if len(args) == 2 else Any
        val_hook = conv.get_structure_hook(val_t)

        def structure(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise WireTypeError(value, "a map")
            return {k: val_hook(v, val_t) for k, v in value.items()}

        return structure

    def enum_factory(t: Any) -> Callable[[Any, Any], Any]:
        by_value = {m.value: m for m in t}
        value_types = {type(v) for v in by_value}

        def structure(value: Any, _: Any) -> Any:
            if type(value) not in value_types:
                raise WireTypeError(value, "string or map")
            try:
                return by_value[value]
            except KeyError:
                raise UnknownVariantError(value, by_value) from None

        return structure

    def literal_factory(t: Any) -> Callable[[Any, Any], Any]:
        allowed = get_args(t)

        def structure(value: Any, _: Any) -> Any:
            if value in allowed and type(value) in {type(a) for a in allowed}:
                return value
            if type(value) is not str:
                # serde_json's words for any enum given something else than a string or map
                raise WireTypeError(value, "string or map")
            raise UnknownVariantError(value, allowed)

        return structure

    def attrs_structure_factory(cls: type) -> Callable[[Any, Any], Any]:
        fields = attrs.fields(cls)
        overrides = {f.name: override(rename=wire_name(f)) for f in fields}
        inner: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls,
            conv,
            _cattrs_detailed_validation=True,
            **overrides,  # type: ignore[arg-type]
        )
        defaulted = frozenset(wire_name(f) for f in fields if f.default is not attrs.NOTHING)

        def structure(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise WireTypeError(value, f"struct {cls.__name__}")
            if defaulted and None in value.values():
                value = {k: v for k, v in value.items() if v is not None or k not in defaulted}
            return inner(value, cls)

        return structure

    def attrs_unstructure_factory(cls: type) -> Callable[[Any], Any]:
        overrides = {
            f.name: override(
                rename=wire_name(f),
                omit_if_default=bool(f.metadata.get(OMIT_IF_NONE)) and f.default is None,
            )
            for f in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **overrides)  # type: ignore[arg-type]

    conv.register_structure_hook_factory(_is_list, list_factory)
    conv.register_structure_hook_factory(_is_dict, dict_factory)
    conv.register_structure_hook_factory(_is_enum, enum_factory)
    conv.register_structure_hook_factory(_is_literal, literal_factory)
    conv.register_structure_hook_factory(attrs.has, attrs_structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, attrs_unstructure_factory)
    return conv


converter: Final = _build()


_hooks: dict[Any, Callable[[Any, Any], Any]] = {}


def structure(value: Any, t: type[T]) -> T:
    hook = _hooks.get(t)
    if hook is None:
        hook = _hooks[t] = converter.get_structure_hook(t)
    result: T = hook(value, t)
    return result


def unstructure(value: Any) -> Any:
    return converter.unstructure(value)
