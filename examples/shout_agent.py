"""A custom appserver agent: answers in capitals, word by word, and can run a command.

    appserver --agent examples.shout_agent:ShoutAgent --listen unix://

(run from the repository root, or put this file's directory on PYTHONPATH). `model/list` then
lists `shout` first (the default) and the built-in `echo`; `thread/start {"model": "echo"}`
picks the other.
"""

from __future__ import annotations

from appserver.app.agents import Turn


class ShoutAgent:
    name = "shout"
    display_name = "Shout"
    description = "Repeats your message in capitals; `run: CMD` runs CMD after approval."

    async def run_turn(self, turn: Turn) -> None:
        text = turn.text
        if text.startswith("run: "):
            outcome = await turn.run_command(text[len("run: ") :], reason="you asked me to")
            verdict = "DECLINED" if outcome.declined else f"EXIT {outcome.exit_code}"
            await turn.say(f"{verdict}: {outcome.output.strip().upper()}", chunks=1)
            return
        message = turn.message()
        for word in text.upper().split():
            await message.delta(word + " ")
        if turn.history:
            await message.delta(f"({len(turn.history)} EARLIER TURNS)")
        await message.finish()
        turn.report_usage(input_tokens=len(text.split()), output_tokens=len(text.split()))
