"""The host filesystem as Codex's `fs/*` methods see it: operations, watches, file search."""
