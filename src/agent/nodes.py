"""The graph's nodes: `trim` keeps the stored window valid and bounded, `call_model` answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph._internal._runnable import RunnableCallable
from langgraph.runtime import Runtime

from agent.content import require_readable
from agent.context import DEFAULT_PERSONA, Context
from agent.errors import EmptyMessageError, InvalidMessageError
from agent.memory.archive import StoreArchive
from agent.memory.text import require_valid_text
from agent.models.backend import Backend
from agent.models.failures import Advice, advice_for, describe_model, model_errors
from agent.models.replies import mark_cut
from agent.personas import Persona, get_persona
from agent.recall import memory_budget, memory_on
from agent.retrieval.passages import cite, with_passages
from agent.settings import read
from agent.state import State
from agent.summary import with_memory
from agent.window import plan_window, tool_call_ids, valid_messages

log = logging.getLogger(__name__)

Tool = BaseTool | Callable[..., Any]
MAX_TOOL_ROUNDS = 8  # per turn; then the model must answer in words (no endless tool loops)


def thread_persona(state: Mapping[str, Any], context: Context) -> tuple[str, dict[str, Any]]:
    """The persona for this turn: named in the run, else the thread's, else the default."""
    name = context.persona or state.get("persona") or read("AGENT_PERSONA") or DEFAULT_PERSONA
    return name, {**state.get("persona_vars", {}), **context.persona_vars}


def message_text(message: BaseMessage) -> str:
    """The plain text of a message, whatever shape its content has."""
    return str(message.text)


def require_user_turn(messages: Sequence[BaseMessage]) -> None:
    """Reject a run whose newest message is not a non-empty user message."""
    if not messages or not isinstance(messages[-1], HumanMessage):
        raise InvalidMessageError("A turn must end with a user message ({'role': 'user', ...}).")
    if not message_text(messages[-1]).strip():
        raise EmptyMessageError()
    require_valid_text(message_text(messages[-1]))


def archive_evicted(runtime: Runtime[Context], start: int, evicted: list[BaseMessage]) -> None:
    """Hand evicted messages to the thread's transcript archive (the run's store)."""
    thread_id = runtime.execution_info.thread_id if runtime.execution_info else None
    if runtime.store is None or thread_id is None:
        log.warning("No store or thread id: %d evicted message(s) not archived.", len(evicted))
        return
    StoreArchive(runtime.store).append(thread_id, start, evicted)


def make_trim(backend: Backend, reserved_tokens: int = 0) -> Callable[..., dict[str, Any]]:
    """Build the `trim` node around the backend's token counter and budget (None: turns only).

    `reserved_tokens` stay free for what later nodes add to the prompt (retrieved passages).
    """

    def trim(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict[str, Any]:
        """Validate the new message, then drop invalid and evict old messages from the state.

        Normally the previous turn's `compact` already evicted, so this only enforces the hard
        budget (after a skipped or failed `compact`, or an unusually long message).
        """
        context = Context.coerce(runtime.context)
        messages = list(state.get("messages", []))
        require_user_turn(messages)
        name, variables = thread_persona(state, context)
        persona = get_persona(name)
        persona.check_variables(context.persona_vars)
        system = with_memory(persona.format([], variables), state)
        serving = backend.for_run(context)
        count, budget = serving.count_tokens(context), serving.budget(context)
        recall_pending = state.get("recalled") is None and memory_on(config, context) is not None
        reserved = reserved_tokens + (memory_budget(context, budget) if recall_pending else 0)
        plan = plan_window(
            messages,
            max_turns=context.max_turns,
            max_tokens=budget,
            low_water=context.low_water,
            count_tokens=count,
            fixed_tokens=count(system) + reserved if budget is not None else 0,
        )
        archived = state.get("archived", 0)
        if plan.evict:
            archive_evicted(runtime, archived, plan.evict)
        removals = [RemoveMessage(id=m.id) for m in plan.drop + plan.evict if m.id]
        update: dict[str, Any] = {
            "messages": removals,
            "persona": name,
            "persona_vars": variables,
            "archived": archived + len(plan.evict),
            # The window the model sees changes now: by this eviction and by the previous
            # turn's `compact` (which evicted after that reply).
            "evicted": sum(isinstance(m, HumanMessage) for m in plan.evict)
            + state.get("compacted", 0),
            "compacted": 0,
            "passages": [],  # retrieved context is per turn; `retrieve` (if wired) refills it
        }
        if plan.evict and context.summary:
            update["summary_due"] = True  # fold what was evicted at the end of this turn
            if "summarized" not in state:  # a thread from before summaries: older archive stays
                update["summarized"] = archived
        return update

    return trim


def model_input(state: State, persona: Persona) -> list[BaseMessage]:
    """What the model is sent: the system message (persona, summary, memories), then the window."""
    window = valid_messages(state.get("messages", []), turn_pending=True)
    system_and_window = with_memory(persona.format(window, state.get("persona_vars", {})), state)
    return with_passages(system_and_window, state.get("passages", []))


def tool_rounds(messages: Sequence[BaseMessage]) -> int:
    """How many times the model has called tools since the latest user message."""
    rounds = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        rounds += bool(tool_call_ids(message))
    return rounds


def with_tools(model: BaseChatModel, tools: Sequence[Tool], rounds: int) -> Runnable[Any, Any]:
    """Offer the tools, but make the model answer in words once a turn used its tool rounds."""
    if not tools:
        return model
    if rounds >= MAX_TOOL_ROUNDS:
        return model.bind_tools(tools, tool_choice="none")
    return model.bind_tools(tools)


@dataclass(frozen=True)
class ModelCall:
    """Everything one model call needs, prepared before the call (the slow, blocking part)."""

    runnable: Runnable[Any, Any]
    prompt: list[BaseMessage]
    backend: str
    advice: Advice
    reply_cap: int | None
    passages: list[Any]


def prepare_call(
    backend: Backend, tools: Sequence[Tool], state: State, runtime: Runtime[Context]
) -> ModelCall:
    """Pick the model, check it can take this input (tools, content kinds), build the prompt."""
    context = Context.coerce(runtime.context)
    persona = get_persona(state.get("persona") or DEFAULT_PERSONA)
    serving = backend.for_run(context)
    if tools:
        serving.check_tools()
    model = serving.chat_model(context)
    messages = state.get("messages", [])
    require_readable(model, messages, describe_model(model))
    return ModelCall(
        runnable=with_tools(model, tools, tool_rounds(messages)),
        prompt=model_input(state, persona),
        backend=describe_model(model),
        advice=advice_for(model),
        reply_cap=serving.reply_cap(context),
        passages=list(state.get("passages", [])),
    )


def finish_call(call: ModelCall, reply: BaseMessage) -> dict[str, Any]:
    """The state update for a reply: marked if the length limit cut it, sources cited."""
    return {"messages": [cite(mark_cut(reply, call.reply_cap), call.passages)]}


def make_call_model(backend: Backend, tools: Sequence[Tool] = ()) -> RunnableCallable:
    """Build the `call_model` node around the backend (and the tools the model may call).

    The node has a sync and an async body: sync runs (`Chatbot.stream`) call the model in
    LangGraph's worker thread; async runs (`astream`, the LangGraph server) await it, so
    cancelling the run (Stop in the web page, `runs.cancel`) also ends the model call, which
    a worker thread could not.
    """

    def call_model(
        state: State, runtime: Runtime[Context], config: RunnableConfig
    ) -> dict[str, Any]:
        """Send the persona prompt and window to the model; tokens stream to `messages` mode."""
        call = prepare_call(backend, tools, state, runtime)
        with model_errors(call.backend, call.advice):
            reply = call.runnable.invoke(call.prompt, config)
        return finish_call(call, reply)

    async def acall_model(
        state: State, runtime: Runtime[Context], config: RunnableConfig
    ) -> dict[str, Any]:
        """Async `call_model`: the same steps, the model awaited (so cancellable)."""
        call = await asyncio.to_thread(prepare_call, backend, tools, state, runtime)
        with model_errors(call.backend, call.advice):
            reply = await call.runnable.ainvoke(call.prompt, config)
        return finish_call(call, reply)

    return RunnableCallable(call_model, acall_model, name="call_model", trace=False)
