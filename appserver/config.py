"""`HOME/config.toml`: the one owner of the user's configuration (Codex's keys where they apply).

Layers, lowest precedence first: the user file `HOME/config.toml`, then the session flags of
the command line (`-c key=value`, `--enable F`, `--disable F`). `effective()` is their deep merge
(tables merge, anything else replaces). Keys appserver honours:

    model, model_provider                    default model (agent) and provider of new threads
    model_providers.<id>.{name,base_url,env_key,wire_api,...}   provider settings (OpenAI agent)
    approval_policy                          untrusted | on-request | never | {granular = {...}}
    sandbox_mode                             read-only | workspace-write | danger-full-access
    sandbox_workspace_write.{writable_roots,network_access,exclude_tmpdir_env_var,exclude_slash_tmp}
    model_reasoning_effort                   default reasoning effort of new threads
    features.<name>                          feature flags (booleans; experimentalFeature/list)
    cwd                                      working directory of threads started without one
                                             (appserver's own key; default: the server's cwd)

Other keys are kept and echoed by `config/read` but mean nothing to appserver.

Reading: `Config.load(home, overrides)` at startup; `reload()` re-reads the file (config/read
and every write do). Writing: `write(edits, ...)` applies `config/value/write` /
`config/batchWrite` edits with Codex's semantics (key paths with quoted segments, `null`
clears, `upsert` merges tables, `expectedVersion`, error codes), edits the file through
`tomlkit` so comments and layout survive, and replaces it atomically (temp file, fsync,
rename, fsync of the directory). All methods are synchronous and may do file I/O: call
`reload`/`write` from a worker thread (`trio.to_thread.run_sync`). Reads of the in-memory
state (`get`, `effective`, the properties) never do I/O.

    config = Config.load(home, parse_overrides(["model=gpt-5", "features.x=true"]))
    config.get("model_providers.local.base_url")     # None when absent
    config.model, config.approval_policy, config.default_cwd
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

log = logging.getLogger(__name__)

CONFIG_FILE_NAME: Final = "config.toml"

APPROVAL_POLICIES: Final = ("untrusted", "on-request", "never")
SANDBOX_MODES: Final = ("read-only", "workspace-write", "danger-full-access")
#: `[model_providers.<id>]` string fields appserver reads (others are kept as written).
PROVIDER_STRING_FIELDS: Final = ("name", "base_url", "env_key", "wire_api", "env_key_instructions")
WORKSPACE_WRITE_BOOLS: Final = ("network_access", "exclude_tmpdir_env_var", "exclude_slash_tmp")
STRING_KEYS: Final = ("model", "model_provider", "review_model", "cwd", "approvals_reviewer")

SESSION_FLAGS_SOURCE: Final[dict[str, Any]] = {"type": "sessionFlags"}


# -- errors ------------------------------------------------------------------------------------


class ConfigError(Exception):
    """A configuration that cannot be used: a bad file, a bad override, or a refused write.

    `code` is Codex's `ConfigWriteErrorCode` for refused writes (`configValidationError`,
    `configVersionConflict`, `configLayerReadonly`, …), None for other failures.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _validation(message: str) -> ConfigError:
    return ConfigError(message, "configValidationError")


# -- command line overrides --------------------------------------------------------------------


def parse_toml_value(raw: str) -> Any:
    """`raw` as a TOML value (Codex wraps it as `_x_ = raw`); raises tomllib.TOMLDecodeError."""
    import tomllib

    return tomllib.loads(f"_x_ = {raw}")["_x_"]


def parse_override(raw: str) -> tuple[str, Any]:
    """One `-c key=value` as Codex parses it: split at the first `=`, both halves trimmed; the
    value is TOML, or else the raw text with surrounding quotes stripped."""
    key, sep, value_text = raw.partition("=")
    if not sep:
        raise ConfigError(f"Invalid override (missing '='): {raw}")
    key = key.strip()
    if not key:
        raise ConfigError(f"Empty key in override: {raw}")
    value_text = value_text.strip()
    import tomllib

    try:
        value = parse_toml_value(value_text)
    except tomllib.TOMLDecodeError:
        value = value_text.strip("\"'")
    if key == "use_legacy_landlock":
        key = "features.use_legacy_landlock"
    return key, value


def parse_overrides(
    raw: Iterable[str], enable: Iterable[str] = (), disable: Iterable[str] = ()
) -> list[tuple[str, Any]]:
    """`-c` overrides in order, then `--enable F` (features.F=true) and `--disable F`."""
    pairs = [parse_override(item) for item in raw]
    pairs += [(f"features.{name}", True) for name in enable]
    pairs += [(f"features.{name}", False) for name in disable]
    return pairs


def apply_override(root: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (split on every `.`, as Codex does for overrides), creating tables and
    replacing non-tables on the way."""
    parts = path.split(".")
    current = root
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = current[part] = {}
        current = child
    current[parts[-1]] = value


# -- key paths ---------------------------------------------------------------------------------


def parse_key_path(path: str) -> list[str]:
    """A `keyPath` of config/value/write as Codex splits it: on dots, except inside a quoted
    segment (`model_providers."a.b".name`), where `\\` escapes the next character."""
    if not path.strip():
        raise _validation("keyPath must not be empty")
    segments: list[str] = []
    segment = ""
    quoted = False
    chars = iter(path)
    for ch in chars:
        if ch == '"' and not segment and not quoted:
            quoted = True
        elif ch == '"' and quoted:
            quoted = False
        elif ch == "\\" and quoted:
            escaped = next(chars, None)
            if escaped is None:
                raise _validation("unterminated escape in keyPath")
            segment += escaped
        elif ch == "." and not quoted:
            if not segment:
                raise _validation("keyPath segments must not be empty")
            segments.append(segment)
            segment = ""
        elif ch == '"':
            raise _validation("invalid quoted keyPath segment")
        else:
            segment += ch
    if quoted:
        raise _validation("unterminated quoted keyPath segment")
    if not segment:
        raise _validation("keyPath segments must not be empty")
    segments.append(segment)
    return segments


def value_at(root: Any, segments: Sequence[str]) -> Any:
    """The value at `segments` (array indices allowed), or None."""
    current = root
    for segment in segments:
        if isinstance(current, Mapping):
            if segment not in current:
                return None
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return None
    return current


def deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> None:
    """Merge `top` into `base` in place: tables merge key by key, anything else replaces."""
    for key, value in top.items():
        existing = base.get(key)
        if isinstance(existing, dict) and isinstance(value, Mapping):
            deep_merge(existing, value)
        else:
            base[key] = copy.deepcopy(value)


# -- validation --------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "a sequence"
    if isinstance(value, Mapping):
        return "a map"
    return f"`{value}`"


def _type_error(value: Any, expected: str, where: str) -> ConfigError:
    return _validation(f"invalid type: {_describe(value)}, expected {expected}\nin `{where}`\n")


def _variant_error(value: Any, variants: Sequence[str], where: str) -> ConfigError:
    names = ", ".join(f"`{v}`" for v in variants)
    return _validation(f"unknown variant `{value}`, expected one of {names}\nin `{where}`\n")


def validate(config: Mapping[str, Any]) -> None:
    """Refuse values of the keys appserver honours that Codex's `ConfigToml` would refuse
    (messages phrased as serde's); other keys pass. Raises ConfigError(configValidationError)."""
    for key in STRING_KEYS:
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise _type_error(value, "a string", key)
    effort = config.get("model_reasoning_effort")
    if effort is not None and not (isinstance(effort, str) and effort):
        raise _type_error(effort, "a non-empty string", "model_reasoning_effort")
    policy = config.get("approval_policy")
    if policy is not None:
        if isinstance(policy, str):
            if policy not in APPROVAL_POLICIES:
                raise _variant_error(policy, (*APPROVAL_POLICIES, "granular"), "approval_policy")
        elif not (isinstance(policy, Mapping) and set(policy) == {"granular"}):
            raise _type_error(policy, "a string or `{granular = {...}}`", "approval_policy")
    sandbox = config.get("sandbox_mode")
    if sandbox is not None and sandbox not in SANDBOX_MODES:
        if not isinstance(sandbox, str):
            raise _type_error(sandbox, "a string", "sandbox_mode")
        raise _variant_error(sandbox, SANDBOX_MODES, "sandbox_mode")
    _validate_table(config, "features", _validate_feature)
    _validate_table(config, "model_providers", _validate_provider)
    workspace = config.get("sandbox_workspace_write")
    if workspace is not None:
        if not isinstance(workspace, Mapping):
            raise _type_error(workspace, "a map", "sandbox_workspace_write")
        for name in WORKSPACE_WRITE_BOOLS:
            value = workspace.get(name)
            if value is not None and not isinstance(value, bool):
                raise _type_error(value, "a boolean", f"sandbox_workspace_write.{name}")
        roots = workspace.get("writable_roots")
        if roots is not None and not (
            isinstance(roots, list) and all(isinstance(r, str) for r in roots)
        ):
            raise _type_error(roots, "a sequence of strings", "sandbox_workspace_write")


def _validate_table(config: Mapping[str, Any], key: str, check: Any) -> None:
    table = config.get(key)
    if table is None:
        return
    if not isinstance(table, Mapping):
        raise _type_error(table, "a map", key)
    for name, value in table.items():
        check(value, f"{key}.{name}")


def _validate_feature(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise _type_error(value, "a boolean", where)


def _validate_provider(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise _type_error(value, "a map", where)
    for field in PROVIDER_STRING_FIELDS:
        item = value.get(field)
        if item is not None and not isinstance(item, str):
            raise _type_error(item, "a string", f"{where}.{field}")


# -- versions and origins ----------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    return str(value)  # TOML dates and times


def version_of(config: Mapping[str, Any]) -> str:
    """Codex's layer version: sha256 of the layer as compact JSON with sorted keys."""
    import hashlib

    text = json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def leaf_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every leaf (array elements by index), as `config/read`'s origins."""
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            yield from leaf_paths(child, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaf_paths(child, f"{prefix}.{index}")
    elif prefix:
        yield prefix


@attrs.frozen
class Layer:
    """One configuration layer as `config/read` shows it (`ConfigLayer`)."""

    source: dict[str, Any]
    config: dict[str, Any]

    @property
    def version(self) -> str:
        return version_of(self.config)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.source, "version": self.version}

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.source, "version": self.version, "config": self.config}


@attrs.frozen
class Edit:
    """One `ConfigEdit`: `value` None clears the key; `merge_strategy` is replace or upsert."""

    key_path: str
    value: Any
    merge_strategy: str = "replace"


@attrs.frozen
class WriteResult:
    """`ConfigWriteResponse`."""

    status: str
    version: str
    file_path: str
    overridden_metadata: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "filePath": self.file_path,
            "overriddenMetadata": self.overridden_metadata,
        }


# -- the file ----------------------------------------------------------------------------------


def _read_plain(path: Path) -> dict[str, Any]:
    """The file as plain values ({} if it does not exist). Reading uses the standard library's
    parser: tomlkit (~0.1 s to import) is needed only to write."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"failed to parse {path}: {exc}") from exc


def _read_document(path: Path) -> Any:
    """The file as a tomlkit document (an empty one if the file does not exist)."""
    import tomlkit

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    try:
        return tomlkit.parse(text)
    except Exception as exc:
        raise ConfigError(f"failed to parse {path}: {exc}") from exc


def _plain(document: Any) -> dict[str, Any]:
    plain: dict[str, Any] = document.unwrap()
    return plain


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`: a temp file in the same directory, fsync, rename over, fsync
    the directory. A reader sees the old file or the new one, never a mix; the file's mode is
    kept (0600 for a new file, as it may hold provider settings)."""
    target = Path(os.path.realpath(path))
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    import tempfile

    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _set_in_document(container: Any, segments: Sequence[str], value: Any) -> None:
    """Set `segments` to `value` in a tomlkit container, touching only what changes, so
    comments and layout of untouched keys survive. A table value replacing a table is merged
    key by key (keys it lacks are removed)."""
    import tomlkit

    head, rest = segments[0], segments[1:]
    if rest:
        child = container.get(head) if head in container else None
        if not isinstance(child, dict):
            if head in container:
                del container[head]
            container[head] = tomlkit.table()
            child = container[head]
        _set_in_document(child, rest, value)
        return
    existing = container.get(head) if head in container else None
    if isinstance(existing, dict) and isinstance(value, Mapping) and value:
        for key in [k for k in existing if k not in value]:
            del existing[key]
        for key, item in value.items():
            current = existing.get(key) if key in existing else None
            if current is None or _unwrap(current) != item:
                _set_in_document(existing, [key], item)
        return
    if isinstance(value, Mapping) and not isinstance(container, tomlkit.items.InlineTable):
        # An explicit header even when empty: tomlkit would not print an empty implicit table.
        table = tomlkit.table(is_super_table=False)
        for key, item in value.items():
            _set_in_document(table, [key], item)
        if head in container:
            del container[head]
        container[head] = table
    elif existing is not None and hasattr(existing, "trivia") and not isinstance(value, Mapping):
        # Keep the trailing comment and spacing of a replaced scalar or array.
        item = tomlkit.item(value)
        item.trivia.comment_ws = existing.trivia.comment_ws
        item.trivia.comment = existing.trivia.comment
        item.trivia.indent = existing.trivia.indent
        container[head] = item
    else:
        container[head] = value


def _unwrap(item: Any) -> Any:
    unwrap = getattr(item, "unwrap", None)
    return unwrap() if unwrap is not None else item


def _clear_in_document(container: Any, segments: Sequence[str]) -> None:
    for segment in segments[:-1]:
        if segment not in container or not isinstance(container[segment], dict):
            return
        container = container[segment]
    if segments[-1] in container:
        del container[segments[-1]]


def _merge_value(root: dict[str, Any], segments: Sequence[str], value: Any, strategy: str) -> None:
    """Codex's `apply_merge` on plain values."""
    current = root
    for segment in segments[:-1]:
        child = current.get(segment)
        if not isinstance(child, dict):
            child = current[segment] = {}
        current = child
    last = segments[-1]
    existing = current.get(last)
    if strategy == "upsert" and isinstance(existing, dict) and isinstance(value, Mapping):
        deep_merge(existing, value)
    else:
        current[last] = copy.deepcopy(value)


def _clear_value(root: dict[str, Any], segments: Sequence[str]) -> None:
    current: Any = root
    for segment in segments[:-1]:
        if not isinstance(current, dict) or segment not in current:
            return
        current = current[segment]
    if isinstance(current, dict):
        current.pop(segments[-1], None)


# -- the configuration -------------------------------------------------------------------------


class Config:
    """The user's configuration: the file layer, the session-flag layer, their merge."""

    def __init__(
        self,
        home: Path,
        overrides: Sequence[tuple[str, Any]] = (),
        *,
        server_cwd: str | None = None,
    ) -> None:
        self.home = home
        self.path = home / CONFIG_FILE_NAME
        self.server_cwd = server_cwd or os.getcwd()
        self._flags: dict[str, Any] = {}
        for key, value in overrides:
            apply_override(self._flags, key, value)
        self._user: dict[str, Any] = {}
        self._effective: dict[str, Any] = {}
        self._write_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        home: Path,
        overrides: Sequence[tuple[str, Any]] = (),
        *,
        server_cwd: str | None = None,
    ) -> Config:
        """Read the file and check file and overrides; raises ConfigError (the server refuses
        to start, as Codex does with a bad config)."""
        config = cls(home, overrides, server_cwd=server_cwd)
        config.reload()
        return config

    # -- reading -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the file. On a bad file raise ConfigError and keep the previous state."""
        with self._write_lock:
            user = _read_plain(self.path)
            try:
                validate(user)
            except ConfigError as exc:
                raise ConfigError(f"invalid configuration in {self.path}: {exc.message}") from exc
            effective = self._merge(user)
            try:
                validate(effective)
            except ConfigError as exc:
                raise ConfigError(f"invalid -c/--enable/--disable override: {exc.message}") from exc
            self._user, self._effective = user, effective

    def _merge(self, user: Mapping[str, Any]) -> dict[str, Any]:
        effective = copy.deepcopy(dict(user))
        deep_merge(effective, self._flags)
        return effective

    def effective(self) -> dict[str, Any]:
        """The merged configuration (a copy)."""
        return copy.deepcopy(self._effective)

    def get(self, key_path: str, default: Any = None) -> Any:
        """The effective value at a dotted path (`a.b.c`; quoted segments allowed)."""
        value = value_at(self._effective, parse_key_path(key_path))
        return default if value is None else copy.deepcopy(value)

    @property
    def user_config(self) -> dict[str, Any]:
        return copy.deepcopy(self._user)

    @property
    def session_flags(self) -> dict[str, Any]:
        return copy.deepcopy(self._flags)

    def user_layer(self) -> Layer:
        return Layer({"type": "user", "file": str(self.path), "profile": None}, self._user)

    def layers(self) -> list[Layer]:
        """Highest precedence first; the session-flag layer only when there are flags."""
        layers = [self.user_layer()]
        if self._flags:
            layers.insert(0, Layer(dict(SESSION_FLAGS_SOURCE), self._flags))
        return layers

    def origins(self) -> dict[str, dict[str, Any]]:
        """Each effective leaf path -> the metadata of the highest layer that sets it."""
        origins: dict[str, dict[str, Any]] = {}
        for layer in reversed(self.layers()):
            metadata = layer.metadata()
            for path in leaf_paths(layer.config):
                origins[path] = metadata
        return origins

    # -- what appserver honours --------------------------------------------------------------

    @property
    def model(self) -> str | None:
        return self._string("model")

    @property
    def model_provider(self) -> str | None:
        return self._string("model_provider")

    @property
    def model_providers(self) -> dict[str, dict[str, Any]]:
        providers = self._effective.get("model_providers")
        return copy.deepcopy(providers) if isinstance(providers, dict) else {}

    @property
    def approval_policy(self) -> Any:
        return copy.deepcopy(self._effective.get("approval_policy"))

    @property
    def sandbox_mode(self) -> str | None:
        return self._string("sandbox_mode")

    @property
    def sandbox_workspace_write(self) -> dict[str, Any]:
        table = self._effective.get("sandbox_workspace_write")
        return copy.deepcopy(table) if isinstance(table, dict) else {}

    @property
    def reasoning_effort(self) -> str | None:
        return self._string("model_reasoning_effort")

    @property
    def features(self) -> dict[str, bool]:
        """The features set in the file or by flags (not the defaults of unset ones)."""
        table = self._effective.get("features")
        return dict(table) if isinstance(table, dict) else {}

    @property
    def default_cwd(self) -> str:
        """`cwd` from the configuration, else the server's working directory."""
        configured = self._string("cwd")
        if configured:
            return os.path.abspath(os.path.expanduser(configured))
        return self.server_cwd

    def _string(self, key: str) -> str | None:
        value = self._effective.get(key)
        return value if isinstance(value, str) else None

    # -- writing -----------------------------------------------------------------------------

    def write(
        self,
        edits: Sequence[Edit],
        *,
        file_path: str | None = None,
        expected_version: str | None = None,
    ) -> WriteResult:
        """Apply edits to the user file as Codex's `config/batchWrite` does; atomic: either every
        edit is written or none (ConfigError with Codex's error code)."""
        if file_path is not None and not _same_path(file_path, self.path):
            raise ConfigError("Only writes to the user config are allowed", "configLayerReadonly")
        with self._write_lock:
            document = _read_document(self.path)
            user = _plain(document)
            if expected_version is not None and expected_version != version_of(user):
                raise ConfigError(
                    "Configuration was modified since last read. Fetch latest version and retry.",
                    "configVersionConflict",
                )
            parsed: list[list[str]] = []
            changed = False
            for edit in edits:
                segments = parse_key_path(edit.key_path)
                if edit.value is not None:
                    _refuse_profiles(segments)
                before = copy.deepcopy(value_at(user, segments))
                if edit.value is None:
                    _clear_value(user, segments)
                else:
                    _merge_value(user, segments, edit.value, edit.merge_strategy)
                after = value_at(user, segments)
                if after != before:
                    changed = True
                    if after is None:
                        _clear_in_document(document, segments)
                    else:
                        _set_in_document(document, segments, after)
                parsed.append(segments)
            effective = self._merge(user)
            for candidate in (user, effective):
                try:
                    validate(candidate)
                except ConfigError as exc:
                    raise _validation(f"Invalid configuration: {exc.message}") from exc
            if changed or not self.path.exists():
                write_atomically(self.path, document.as_string())
            self._user, self._effective = user, effective
        overridden = self._first_overridden(parsed)
        return WriteResult(
            status="okOverridden" if overridden else "ok",
            version=version_of(user),
            file_path=str(self.path),
            overridden_metadata=overridden,
        )

    def _first_overridden(self, edits: Iterable[Sequence[str]]) -> dict[str, Any] | None:
        if not self._flags:
            return None
        for segments in edits:
            user_value = value_at(self._user, segments)
            effective_value = value_at(self._effective, segments)
            flag_value = value_at(self._flags, segments)
            if flag_value is not None and user_value != effective_value:
                return {
                    "message": "Overridden by session flags",
                    "overridingLayer": self.layers()[0].metadata(),
                    "effectiveValue": copy.deepcopy(effective_value),
                }
        return None


def _refuse_profiles(segments: Sequence[str]) -> None:
    if list(segments) == ["profile"]:
        raise _validation(
            "`profile` is a legacy config selector and can no longer be written; use "
            "`--profile <name>` with `<name>.config.toml` instead"
        )
    if segments[0] == "profiles":
        raise _validation(
            "`profiles` contains legacy config profile tables and can no longer be written; "
            "use `--profile <name>` with `<name>.config.toml` instead"
        )


def _same_path(given: str, expected: Path) -> bool:
    if not os.path.isabs(given):
        return False
    return os.path.normpath(os.path.realpath(given)) == os.path.normpath(os.path.realpath(expected))
