"""Validate what appserver sends against the Codex 0.169 JSON Schema (copied into fixtures).

Two schema sets: `FULL` (`tests/fixtures/codex-schema`, experimental surface included) for
clients that negotiated `experimentalApi`, and `STABLE` (`tests/fixtures/codex-schema-stable`)
for the others. `STABLE` is *strict*: every object schema that lists `properties` also gets
`additionalProperties: false`, so an experimental field (present only in the full schema) sent to
a stable client is an error, as is any key the schema does not know.

- `validate_response(method, result)`: against `<Name>Response` of the method (the name comes
  from the method's params type in `ClientRequest.json`; `initialize` uses
  `v1/InitializeResponse.json`);
- `validate_notification(frame)`: the whole `{method, params, emittedAtMs}` frame against the
  `ServerNotification.json` variant of its method and the envelope's own properties;
- `validate_server_request(frame)`: the whole `{id, method, params}` frame against the
  `ServerRequest.json` variant of its method.

Each raises `SchemaError` listing what failed. Validators are built once and cached.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT7

FIXTURES = Path(__file__).parent / "fixtures"
V2_FILE = "codex_app_server_protocol.v2.schemas.json"
INITIALIZE_FILE = "v1/InitializeResponse.json"

#: Methods whose response type is not `<ParamsName minus Params>Response`.
RESPONSE_OVERRIDES = {
    "configRequirements/read": "ConfigRequirementsReadResponse",
    "config/value/write": "ConfigWriteResponse",
    "config/batchWrite": "ConfigWriteResponse",
    "account/logout": "LogoutAccountResponse",
    "memory/reset": "MemoryResetResponse",
}

#: Methods whose response schema is a file of its own, not a v2 definition (loaded if present).
RESPONSE_FILES = {
    "fuzzyFileSearch": "FuzzyFileSearchResponse.json",
    "fuzzyFileSearch/sessionStart": "FuzzyFileSearchSessionStartResponse.json",
    "fuzzyFileSearch/sessionUpdate": "FuzzyFileSearchSessionUpdateResponse.json",
    "fuzzyFileSearch/sessionStop": "FuzzyFileSearchSessionStopResponse.json",
}

#: Keywords whose value is a schema, a list of schemas, or a name → schema map.
_SCHEMA_VALUED = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAPS = ("properties", "definitions", "patternProperties")


class SchemaError(AssertionError):
    pass


def _strict(schema: Any) -> Any:
    """A copy of `schema` where every object schema with `properties` forbids other keys."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SCHEMA_VALUED:
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_strict(s) for s in out[key]]
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _strict(s) for name, s in out[key].items()}
    if "properties" in out and isinstance(out.get("oneOf"), list):
        # An envelope (ServerNotification.json's root: `emittedAtMs` beside a `oneOf` of
        # method variants): its properties are allowed in every variant.
        shared = out["properties"]
        out["oneOf"] = [
            {**v, "properties": {**shared, **v["properties"]}} if "properties" in v else v
            for v in out["oneOf"]
        ]
    elif "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _variants_by_method(doc: dict[str, Any]) -> dict[str, int]:
    return {
        variant["properties"]["method"]["enum"][0]: index
        for index, variant in enumerate(doc["oneOf"])
    }


class SchemaSet:
    def __init__(self, root: Path, *, strict: bool = False) -> None:
        self.root = root
        self.strict = strict
        self._validators: dict[str, jsonschema.Draft7Validator] = {}

    @functools.cached_property
    def _registry(self) -> Registry:
        registry: Registry = Registry()
        names = [V2_FILE, "ServerNotification.json", "ServerRequest.json", INITIALIZE_FILE]
        names += [name for name in RESPONSE_FILES.values() if (self.root / name).exists()]
        for name in names:
            path = self.root / name
            doc = json.loads(path.read_text())
            if self.strict:
                doc = _strict(copy.deepcopy(doc))
            registry = registry.with_resource(self._uri(path.name), DRAFT7.create_resource(doc))
        return registry

    @staticmethod
    def _uri(file_name: str) -> str:
        return f"urn:codex-schema:{file_name}"

    @functools.cached_property
    def _notification_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.root / "ServerNotification.json").read_text())
        return doc

    @functools.cached_property
    def _notifications(self) -> dict[str, int]:
        return _variants_by_method(self._notification_doc)

    @functools.cached_property
    def _server_requests(self) -> dict[str, int]:
        return _variants_by_method(json.loads((self.root / "ServerRequest.json").read_text()))

    @functools.cached_property
    def response_types(self) -> dict[str, str]:
        """method → the name of its response definition, for every client request method."""
        doc = json.loads((self.root / "ClientRequest.json").read_text())
        out: dict[str, str] = {}
        for variant in doc["oneOf"]:
            method = variant["properties"]["method"]["enum"][0]
            ref = variant["properties"].get("params", {}).get("$ref")
            if ref is not None:
                out[method] = ref.rsplit("/", 1)[-1].removesuffix("Params") + "Response"
        out.update(RESPONSE_OVERRIDES)
        return out

    def _validator(self, ref: str, envelope: dict[str, Any] | None) -> jsonschema.Draft7Validator:
        validator = self._validators.get(ref)
        if validator is None:
            schema: dict[str, Any] = {"$ref": ref}
            if envelope is not None:
                schema = {"allOf": [schema, {"properties": envelope}]}
            validator = jsonschema.Draft7Validator(schema, registry=self._registry)
            self._validators[ref] = validator
        return validator

    def _check(
        self, ref: str, instance: Any, what: str, envelope: dict[str, Any] | None = None
    ) -> None:
        validator = self._validator(ref, envelope)
        errors = sorted(validator.iter_errors(instance), key=lambda e: e.path)
        if errors:
            lines = [
                f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                for e in errors[:5]
            ]
            kind = "stable, strict" if self.strict else "full"
            raise SchemaError(f"{what} does not match the {kind} schema:\n" + "\n".join(lines))

    # -- the three kinds of server output ----------------------------------------------------

    def validate_response(self, method: str, result: Any) -> None:
        if method == "initialize":
            ref = self._uri("InitializeResponse.json")
        elif method in RESPONSE_FILES and (self.root / RESPONSE_FILES[method]).exists():
            ref = self._uri(RESPONSE_FILES[method])
        else:
            name = self.response_types.get(method)
            if name is None:
                raise SchemaError(f"no response type for {method!r} in {self.root.name}")
            ref = f"{self._uri(V2_FILE)}#/definitions/{name}"
        self._check(ref, result, f"response to {method}")

    def validate_notification(self, frame: dict[str, Any]) -> None:
        index = self._notifications.get(frame.get("method", ""))
        if index is None:
            raise SchemaError(f"notification {frame.get('method')!r} is not in the schema")
        ref = f"{self._uri('ServerNotification.json')}#/oneOf/{index}"
        envelope = self._notification_doc.get("properties", {})
        self._check(ref, frame, f"notification {frame['method']}", envelope)

    def validate_server_request(self, frame: dict[str, Any]) -> None:
        index = self._server_requests.get(frame.get("method", ""))
        if index is None:
            raise SchemaError(f"server request {frame.get('method')!r} is not in the schema")
        ref = f"{self._uri('ServerRequest.json')}#/oneOf/{index}"
        self._check(ref, frame, f"server request {frame['method']}")

    def validate_frame(self, frame: dict[str, Any], request_method: str | None = None) -> None:
        """Any frame the server sent; `request_method` is the method a response answers.

        Error responses are checked for shape only (code and message)."""
        if "jsonrpc" in frame:
            raise SchemaError(f"frame carries a jsonrpc member: {frame}")
        if "method" in frame and "id" in frame:
            self.validate_server_request(frame)
        elif "method" in frame:
            self.validate_notification(frame)
        elif "error" in frame:
            error = frame["error"]
            if not (isinstance(error.get("code"), int) and isinstance(error.get("message"), str)):
                raise SchemaError(f"malformed error response: {frame}")
        else:
            if request_method is None:
                raise SchemaError(f"response to an unknown request: {frame}")
            self.validate_response(request_method, frame["result"])


FULL = SchemaSet(FIXTURES / "codex-schema")
STABLE = SchemaSet(FIXTURES / "codex-schema-stable", strict=True)


def schema_for(experimental_api: bool) -> SchemaSet:
    return FULL if experimental_api else STABLE
