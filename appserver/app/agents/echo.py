"""The built-in `echo` agent (spec §6).

- Plain text: answers `You said: <text>`, streamed as several deltas.
- Text starting with `$ `: runs the rest as a shell command after approval and answers
  `Command exited with code N.`, or `Command was declined.`
- With an `outputSchema`: answers a small JSON instance of the schema whose strings are taken
  from the user's words (so the TUI's title request, a side turn asking for `{"title": …}`,
  gets a title such as `Fix the login bug`, not a placeholder).
"""

from __future__ import annotations

from typing import Any

import orjson

from appserver.app.agents.base import Turn

STUB_STRING = "echo"
#: The TUI's title request quotes the user's prompt after this line.
PROMPT_MARKER = "User prompt:"
#: The TUI's recap request quotes the conversation after this line, a `User: ` line per prompt.
CONVERSATION_MARKER = "\nConversation:\n"
USER_LINE = "User: "
TITLE_WORDS = 5


def title_from(text: str) -> str:
    """A short title from the user's words: the quoted prompt if the text quotes one, its first
    line, at most five words, first letter capitalized, no trailing punctuation."""
    if PROMPT_MARKER in text:
        text = text.rsplit(PROMPT_MARKER, 1)[1]
    elif CONVERSATION_MARKER in text:
        # The TUI's recap request quotes the conversation: the user's latest words lead.
        said = [
            line.removeprefix(USER_LINE)
            for line in text.rsplit(CONVERSATION_MARKER, 1)[1].splitlines()
            if line.startswith(USER_LINE)
        ]
        text = said[-1] if said else text
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    words = line.split()[:TITLE_WORDS]
    title = " ".join(words).strip(" .,:;!?\"'`")
    return title[:1].upper() + title[1:] if title else STUB_STRING


def _fit(text: str, low: int, high: int | None) -> str:
    if high is not None and len(text) > high:
        cut = text[:high]
        text = cut.rsplit(" ", 1)[0] if " " in cut and not text[high : high + 1].isspace() else cut
        text = text.rstrip()
    return text.ljust(low, "o")


def minimal_instance(schema: Any, words: str = STUB_STRING) -> Any:
    """The smallest value that satisfies common JSON Schema keywords; strings are `words` (cut
    to `maxLength`, padded to `minLength`)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0], words)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        required = schema.get("required", list(properties))
        return {name: minimal_instance(properties.get(name, {}), words) for name in required}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [minimal_instance(schema.get("items", {}), words) for _ in range(count)]
    if kind == "string":
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        return _fit(words, low, None if high is None else int(high))
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
            instance = minimal_instance(turn.output_schema, title_from(text))
            answer = orjson.dumps(instance).decode()
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
