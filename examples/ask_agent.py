"""An agent that asks the user before answering (`item/tool/requestUserInput`; clients that
negotiated `experimentalApi`, such as the Codex TUI, show the question).

    appserver --agent examples.ask_agent:AskAgent

It asks how to answer, then does so. In a side turn (a thread with an `outputSchema`, such as the
TUI's title requests) it answers with JSON instead, without asking.
"""

from __future__ import annotations

from appserver.app.agents import Option, Question, Turn
from appserver.app.agents.echo import minimal_instance

STYLE = Question(
    id="style",
    header="Style",
    question="How should I answer?",
    options=(Option("short", "One line"), Option("loud", "In capitals")),
    is_other=True,
)


class AskAgent:
    name = "asker"
    display_name = "Asker"
    description = "Asks you how to answer, then answers."

    async def run_turn(self, turn: Turn) -> None:
        if turn.output_schema is not None:
            answer = minimal_instance(turn.output_schema)
            if isinstance(answer, dict) and "title" in answer:
                # The prompt ends with what to title; keep within the schema's maxLength.
                title = turn.output_schema["properties"]["title"]
                lines = [line.strip() for line in turn.text.splitlines() if line.strip()]
                answer["title"] = (lines[-1] if lines else "Untitled")[: title.get("maxLength", 60)]
            await turn.answer_json(answer)
            return
        answers = await turn.ask_user([STYLE])
        style = (answers.get("style") or ["short"])[0]
        if style == "loud":
            await turn.say(turn.text.upper())
        elif style == "short":
            await turn.say(turn.text.split("\n")[0][:80], chunks=1)
        else:
            await turn.say(f"({style}) {turn.text}")
