"""An agent that uses the tools the client registered (`dynamicTools` at `thread/start`).

    appserver --agent examples.tool_agent:ToolAgent

A message `TOOL {json arguments}` calls that tool through the client (`item/tool/call`) and
answers with what it returned; anything else lists the tools. `namespace.tool` picks a tool in a
namespace.
"""

from __future__ import annotations

import json

from appserver.app.agents import Turn


def tool_names(turn: Turn) -> list[str]:
    names = []
    for spec in turn.dynamic_tools:
        if spec.get("type") == "namespace":
            names += [f"{spec['name']}.{tool['name']}" for tool in spec.get("tools", [])]
        else:
            names.append(spec["name"])
    return names


class ToolAgent:
    name = "tools"
    display_name = "Tool user"
    description = "Calls the client's tools: `TOOL {json}`."

    async def run_turn(self, turn: Turn) -> None:
        name, _, raw = turn.text.strip().partition(" ")
        if name not in tool_names(turn):
            await turn.say(f"Tools: {', '.join(tool_names(turn)) or 'none registered'}.")
            return
        namespace, _, tool = name.rpartition(".")
        reasoning = turn.reasoning()
        await reasoning.summary_delta(f"Calling {name}")
        await reasoning.finish()
        result = await turn.call_tool(tool, json.loads(raw or "{}"), namespace=namespace or None)
        verdict = "returned" if result.success else "failed"
        await turn.say(f"{name} {verdict}: {result.text}", chunks=1)
