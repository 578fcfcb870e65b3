"""Methods that need no state: answered inline, the cheapest requests the server has."""

from __future__ import annotations

import attrs

from appserver.processor import RequestContext
from appserver.registry import Registry


@attrs.frozen
class WindowsSandboxReadinessResponse:
    status: str


@attrs.frozen
class MockExperimentalMethodParams:
    value: str | None = None


@attrs.frozen
class MockExperimentalMethodResponse:
    echoed: str | None


def windows_sandbox_readiness(ctx: RequestContext, params: None) -> WindowsSandboxReadinessResponse:
    return WindowsSandboxReadinessResponse("notConfigured")


def mock_experimental_method(
    ctx: RequestContext, params: MockExperimentalMethodParams
) -> MockExperimentalMethodResponse:
    return MockExperimentalMethodResponse(params.value)


def register(registry: Registry) -> None:
    registry.method("windowsSandbox/readiness")(windows_sandbox_readiness)
    registry.method("mock/experimentalMethod", MockExperimentalMethodParams, experimental=True)(
        mock_experimental_method
    )
