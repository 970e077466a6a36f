"""What a turn does once its reply is out: fold evicted messages into the summary, learn facts.

Both steps run after `call_model` (in parallel, one superstep), never in front of it, so no
turn's first token waits for them. The route skips them when there is nothing to do, so a turn
that neither evicts nor has a user ends right after the reply, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.prebuilt import tools_condition
from langgraph.runtime import Runtime, get_runtime

from agent.context import Context
from agent.models.backend import Backend
from agent.recall import memory_on
from agent.state import State
from agent.summary import compaction_due

POST_REPLY_NODES = ("compact", "remember")


def make_route_after_model(
    backend: Backend, reserved_tokens: int = 0
) -> Callable[..., str | Sequence[str]]:
    """Build the route after `call_model`: tools, the post-reply steps that are due, or END."""

    def route_after_model(state: State, config: RunnableConfig) -> str | Sequence[str]:
        """Run the tools the reply asks for, else the due post-reply steps, else end the turn.

        Outside a run (`update_state` saving a stopped reply) there is no runtime: it just ends.
        """
        if not state.get("messages"):  # a rollback emptied the turn
            return END
        if tools_condition(dict(state)) == "tools":
            return "tools"
        runtime: Runtime[Context] | None = get_runtime(Context)
        if runtime is None:
            return END
        context = Context.coerce(runtime.context)
        due: list[str] = []
        serving = backend.for_run(context)
        count, budget = serving.count_tokens(context), serving.budget(context)
        if compaction_due(state, context, count, budget, reserved_tokens):
            due.append("compact")
        if runtime.store is not None and memory_on(config, context) is not None:
            due.append("remember")
        return due or END

    return route_after_model
