"""Confining the commands the server runs: the wire `SandboxPolicy` (`policy`), the bubblewrap
command line that enforces it (`bwrap`), and whether it can be enforced here (`enforce`)."""

from appserver.sandbox.enforce import (
    Availability,
    SandboxUnavailable,
    allow_unsandboxed,
    availability,
    configure,
    confine,
    hide,
)
from appserver.sandbox.policy import Policy, PolicyError, parse_policy, writable_roots

__all__ = [
    "Availability",
    "Policy",
    "PolicyError",
    "SandboxUnavailable",
    "allow_unsandboxed",
    "availability",
    "configure",
    "confine",
    "hide",
    "parse_policy",
    "writable_roots",
]
