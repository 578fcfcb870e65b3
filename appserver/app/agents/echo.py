"""The built-in `echo` agent (spec §6).

- Plain text: answers `You said: <text>`, streamed as several deltas.
- Text starting with `$ `: runs the rest as a shell command after approval and answers
  `Command exited with code N.`, or `Command was declined.`
- With an `outputSchema`: answers a minimal JSON instance of the schema.
"""

from __future__ import annotations

from typing import Any

import orjson

from appserver.app.agents.base import Turn

STUB_STRING = "echo"


def minimal_instance(schema: Any) -> Any:
    """The smallest value that satisfies common JSON Schema keywords (strings are `echo`)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        required = schema.get("required", list(properties))
        return {name: minimal_instance(properties.get(name, {})) for name in required}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [minimal_instance(schema.get("items", {})) for _ in range(count)]
    if kind == "string":
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        text = STUB_STRING.ljust(low, "o")
        return text if high is None else text[: int(high)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


class EchoAgent:
    name = "echo"
    display_name = "Echo"
    description = "Echoes your message; `$ command` runs a shell command after approval."

    async def run_turn(self, turn: Turn) -> None:
        text = turn.text
        if turn.output_schema is not None:
            answer = orjson.dumps(minimal_instance(turn.output_schema)).decode()
            await turn.say(answer, chunks=1)
        elif text.startswith("$ "):
            outcome = await turn.run_command(text[2:], reason="the echo agent runs `$ ` commands")
            if outcome.declined:
                await turn.say("Command was declined.", chunks=1)
            else:
                await turn.say(f"Command exited with code {outcome.exit_code}.", chunks=1)
        else:
            await turn.say(f"You said: {text}")
        turn.report_usage(input_tokens=len(text.split()), output_tokens=len(text.split()) + 2)
