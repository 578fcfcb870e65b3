"""appserver: a Codex-compatible app-server on trio."""

# A literal, not importlib.metadata: that lookup costs 40-70 ms on every launch.
__version__ = "0.1.0"

__all__ = ["__version__"]
