"""Session overrides are validated against the schema's enums, with Codex's serde-style text.

Expected messages are what Codex 0.169 answered to the same params (`-32600 Invalid request: …`).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from appserver.protocol import v2
from appserver.registry import Method, ParamsError
from tests.schema import FIXTURES, V2_FILE

START = Method("thread/start", lambda ctx, params: None, v2.ThreadStartParams)
TURN = Method("turn/start", lambda ctx, params: None, v2.TurnStartParams)
GRANULAR = {"mcp_elicitations": True, "rules": True, "sandbox_approval": True}
POLICY_VARIANTS = "one of `untrusted`, `on-request`, `granular`, `never`"


def refusal(method: Method, params: dict[str, Any]) -> str:
    with pytest.raises(ParamsError) as caught:
        method.decode_params(params)
    return str(caught.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"approvalPolicy": "bogus"}, f"unknown variant `bogus`, expected {POLICY_VARIANTS}"),
        (
            {"approvalPolicy": "on-failure"},
            f"unknown variant `on-failure`, expected {POLICY_VARIANTS}",
        ),
        ({"approvalPolicy": 5}, "invalid type: integer `5`, expected string or map"),
        ({"approvalPolicy": 1.5}, "invalid type: floating point `1.5`, expected string or map"),
        ({"approvalPolicy": []}, "invalid type: sequence, expected string or map"),
        ({"approvalPolicy": {}}, "invalid value: map, expected map with a single key"),
        (
            {"approvalPolicy": {"granular": {}, "x": 1}},
            "invalid value: map, expected map with a single key",
        ),
        ({"approvalPolicy": {"bogus": {}}}, f"unknown variant `bogus`, expected {POLICY_VARIANTS}"),
        ({"approvalPolicy": {"granular": 5}}, "invalid type: integer `5`, expected struct variant"),
        ({"approvalPolicy": {"granular": {}}}, "missing field `sandbox_approval`"),
        ({"approvalPolicy": {"granular": {"sandbox_approval": True}}}, "missing field `rules`"),
        (
            {"approvalPolicy": {"granular": {"sandbox_approval": True, "rules": 1}}},
            "invalid type: integer `1`, expected a boolean",
        ),
        (
            {"sandbox": "bogus"},
            "unknown variant `bogus`, expected one of `read-only`, `workspace-write`, "
            "`danger-full-access`",
        ),
        ({"sandbox": 5}, "invalid type: integer `5`, expected string or map"),
        (
            {"approvalsReviewer": "bogus"},
            "unknown variant `bogus`, expected one of `user`, `auto_review`, `guardian_subagent`",
        ),
        ({"approvalsReviewer": 5}, "invalid type: integer `5`, expected string or map"),
    ],
)
def test_bad_session_settings_are_refused_as_codex_does(
    params: dict[str, Any], message: str
) -> None:
    assert refusal(START, params) == message
    assert refusal(TURN, {"threadId": "t", "input": [], **params}) == message


def test_a_huge_integer_policy_is_a_params_error_not_an_internal_error() -> None:
    """Regression (issue 13): 2^100 was accepted, then failed to encode (-32603)."""
    message = refusal(START, {"approvalPolicy": 2**100})
    assert message.startswith("invalid type: ")
    assert message.endswith("expected string or map")


def test_valid_settings_are_kept_as_sent() -> None:
    for policy in ("untrusted", "on-request", "never", {"granular": GRANULAR}):
        assert START.decode_params({"approvalPolicy": policy}).approval_policy == policy
    params = START.decode_params({"sandbox": "workspace-write", "approvalsReviewer": "user"})
    assert (params.sandbox, params.approvals_reviewer) == ("workspace-write", "user")


def _ask_for_approval_schema() -> dict[str, Any]:
    schema = json.loads((FIXTURES / "codex-schema" / V2_FILE).read_text())
    definitions = schema["definitions"]
    return {**definitions["AskForApproval"], "definitions": definitions}


ASK_FOR_APPROVAL = jsonschema.Draft7Validator(_ask_for_approval_schema())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
policies = st.one_of(
    json_values,
    st.sampled_from(["untrusted", "on-request", "never", "granular", "on-failure"]),
    st.fixed_dictionaries(
        {"granular": st.fixed_dictionaries({}, optional={k: json_values for k in GRANULAR})}
    ),
)


@given(policies)
@example(2**64)
@example({"granular": GRANULAR})
def test_accepted_policies_are_exactly_the_schema_ones(policy: Any) -> None:
    """Whatever decodes is valid against the schema's AskForApproval, and the reverse."""
    try:
        decoded = START.decode_params({"approvalPolicy": policy}).approval_policy
    except ParamsError:
        assert policy is not None
        assert not ASK_FOR_APPROVAL.is_valid(policy) or type(policy) is float
        return
    if policy is None:
        assert decoded is None
    else:
        ASK_FOR_APPROVAL.validate(decoded)
