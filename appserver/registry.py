"""The method registry: what each client request method takes and which handler answers it.

A handler is `handler(ctx, params) -> result`. A plain function runs inline in the connection's
reader (it must not block: no I/O); a coroutine function runs as its own task, so a slow handler
never holds up the reader. `params` arrives typed, structured by the package converter; a params
error is answered before the `Not initialized` check, like Codex.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
from cattrs import BaseValidationError

from appserver.wire.converter import (
    UnknownVariantError,
    WireTypeError,
    describe_structure_error,
    structure,
)

P = TypeVar("P")
#: `handler(ctx, params)`; `ctx` is a `processor.RequestContext` (not named here: the processor
#: imports this module).
Handler = Callable[[Any, Any], Any]
F = TypeVar("F", bound=Handler)


class ParamsError(Exception):
    """Params that do not fit the method; the message is the serde-style reason."""


@attrs.frozen
class Method:
    name: str
    handler: Handler
    params_type: type | None = None
    experimental: bool = False
    #: A plain function answers inline; a coroutine function runs as a task.
    inline: bool = attrs.field(init=False)

    @inline.default
    def _inline(self) -> bool:
        return not inspect.iscoroutinefunction(self.handler)

    def decode_params(self, raw: Any) -> Any:
        if self.params_type is None:
            return None  # Codex accepts no params, `null` and `{}` alike for these
        if raw is None:
            raise ParamsError("missing field `params`")
        try:
            return structure(raw, self.params_type)
        except (BaseValidationError, WireTypeError, ValueError, TypeError, KeyError) as exc:
            raise ParamsError(describe_structure_error(exc)) from None


class Registry:
    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}
        #: Registers the rest of the methods the first time one is looked up that is not here
        #: yet (the server loads its application lazily: `initialize` needs none of it).
        self._loader: Callable[[], object] | None = None

    def load_later(self, loader: Callable[[], object]) -> None:
        self._loader = loader

    def _load(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            loader()

    def add(self, method: Method) -> None:
        if method.name in self._methods:
            raise ValueError(f"method {method.name!r} is registered twice")
        self._methods[method.name] = method

    def method(
        self, name: str, params: type | None = None, *, experimental: bool = False
    ) -> Callable[[F], F]:
        def register(handler: F) -> F:
            self.add(Method(name, handler, params, experimental))
            return handler

        return register

    def get(self, name: str) -> Method | None:
        method = self._methods.get(name)
        if method is None and self._loader is not None:
            self._load()
            method = self._methods.get(name)
        return method

    def __iter__(self) -> Iterator[Method]:
        self._load()
        return iter(self._methods.values())

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def unknown_variant_message(self, name: str) -> str:
        self._load()
        return f"Invalid request: {UnknownVariantError(name, self._methods)}"
