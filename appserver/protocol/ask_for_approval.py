"""`AskForApproval`: a thread's approval policy, checked as Codex's serde enum checks it.

The schema's `oneOf`: one of the strings `untrusted`, `on-request`, `never`, or
`{"granular": {sandbox_approval, rules, mcp_elicitations, [skill_approval],
[request_permissions]}}` (booleans). Anything else is a params error with serde's words, so a
value that could not be stored or echoed (`"bogus"`, an integer beyond 64 bits) never gets in.
"""

from __future__ import annotations

from typing import Any, Final, NewType

from appserver.wire.converter import UnknownVariantError, WireTypeError, converter, describe_json

AskForApproval = NewType("AskForApproval", object)

UNIT_VARIANTS: Final = ("untrusted", "on-request", "never")
#: Serde lists variants in declaration order; `granular` sits between `on-request` and `never`.
VARIANTS: Final = ("untrusted", "on-request", "granular", "never")
#: `GranularApprovalConfig` fields in declaration order, and whether each is required.
GRANULAR_FIELDS: Final = (
    ("sandbox_approval", True),
    ("rules", True),
    ("skill_approval", False),
    ("request_permissions", False),
    ("mcp_elicitations", True),
)


class InvalidValueError(ValueError):
    def __init__(self, value: Any, expected: str) -> None:
        super().__init__(f"invalid value: {describe_json(value)}, expected {expected}")


def structure_ask_for_approval(value: Any, _: Any = None) -> AskForApproval:
    if type(value) is str:
        if value not in UNIT_VARIANTS:
            raise UnknownVariantError(value, VARIANTS)
        return AskForApproval(value)
    if type(value) is not dict:
        raise WireTypeError(value, "string or map")
    if len(value) != 1:
        raise InvalidValueError(value, "map with a single key")
    ((variant, config),) = value.items()
    if variant != "granular":
        raise UnknownVariantError(variant, VARIANTS)
    if type(config) is not dict:
        raise WireTypeError(config, "struct variant")
    for name, required in GRANULAR_FIELDS:
        field = config.get(name)
        if field is None:
            if required:
                raise KeyError(name)
        elif type(field) is not bool:
            raise WireTypeError(field, "a boolean")
    return AskForApproval(value)


converter.register_structure_hook(AskForApproval, structure_ask_for_approval)
