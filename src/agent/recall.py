"""Long-term memory in the graph: `recall` shows the user's facts to the model, `remember` learns.

Whose memory a run uses: on a LangGraph server the authenticated identity (a client can neither
choose nor fake it; the open server's shared "anonymous" user has none), in Python the run's
`Context.user_id`. No user, no long-term memory.

The recalled facts sit in the system message and change only when a thread starts, when a
block is evicted (the prefix changes then anyway) or when the user edits or forgets one of them,
so the prompt prefix stays cacheable. `remember` runs after the reply, off the critical path.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime
from langgraph.store.base import GetOp, Item

from agent.context import Context
from agent.memory.longterm import Fact, UserMemory, fact_from_item, parse_facts
from agent.models.backend import Backend
from agent.models.replies import hit_length_limit
from agent.state import Recalled, State
from agent.window import TokenCounter

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"  # the identity agent.server.auth gives everyone on an open server
AUTH_USER_ID = "langgraph_auth_user_id"  # set by the LangGraph server, never by its clients
RECALL_CANDIDATES = 20  # searched per recall; the token budget decides how many are shown
KNOWN_FACTS = 10  # shown to the extractor so it reuses topics (newer fact replaces older)
EXTRACT_TOKENS = 96
MESSAGE_CHARS = 2000
MEMORY_HEADER = "What you remember about the user from earlier conversations:"
EXTRACT_INSTRUCTIONS = (
    "You keep notes about the user. From the user's latest message, write down facts about the "
    "user that will matter in later conversations (name, job, where they live, preferences, "
    "plans), one per line as 'topic: fact'. When a fact updates a known one, reuse its topic. "
    "Write NONE if the message states no such fact."
)
EXAMPLES = (
    ("My name is Tom and I live in Berlin.", "name: Tom\nhome city: Berlin"),
    ("What's the capital of France?", "NONE"),
    ("I'm allergic to nuts, by the way.", "allergy: nuts"),
)


def user_of(config: RunnableConfig, context: Context) -> str | None:
    """Whose long-term memory this run uses, or None for none.

    Raises:
        ValueError: If a server run names a user other than the authenticated one.
    """
    configurable = config.get("configurable") or {}
    if AUTH_USER_ID not in configurable:
        return context.user_id or None
    identity = configurable.get(AUTH_USER_ID)
    if context.user_id and context.user_id != identity:
        raise ValueError(
            "user_id cannot be set by a server client: the server uses the authenticated user."
        )
    if not isinstance(identity, str) or not identity or identity == ANONYMOUS:
        return None
    return identity


def memory_on(config: RunnableConfig, context: Context) -> str | None:
    """The user whose memory the run reads and adds to, if long-term memory is on."""
    return user_of(config, context) if context.long_term_memory else None


def memory_block(recalled: Sequence[Recalled] | None) -> str:
    """The text appended to the system message for the recalled facts, or ''."""
    if not recalled:
        return ""
    return MEMORY_HEADER + "\n" + "\n".join(f"- {entry['text']}" for entry in recalled)


def entry(fact: Fact) -> Recalled:
    """What the state keeps of a recalled fact."""
    return Recalled(key=fact.key, text=fact.line, updated_at=fact.updated_at.isoformat())


def select(facts: Sequence[Fact], max_tokens: int, count: TokenCounter) -> list[Recalled]:
    """The best-ranked facts whose block fits in `max_tokens` (whole facts only)."""
    chosen: list[Recalled] = []
    for fact in facts:
        candidate = [*chosen, entry(fact)]
        if count([SystemMessage(content=memory_block(candidate))]) > max_tokens:
            continue
        chosen = candidate
    return chosen


def checked(items: Sequence[Item | None], recalled: Sequence[Recalled]) -> list[Recalled] | None:
    """The recalled facts as the store has them now, or None if nothing changed.

    A forgotten fact leaves the prompt, an edited one is shown as edited: what the user
    changes through the API, the CLI or /store holds from the thread's next turn on.
    """
    facts = [fact_from_item(item) if item is not None else None for item in items]
    current = [entry(fact) for fact in facts if fact is not None]
    return None if current == list(recalled) else current


def latest_user_text(messages: Sequence[BaseMessage]) -> str:
    """The newest user message's text."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.text)
    return ""


def memory_budget(context: Context, budget: int | None) -> int:
    """Tokens the recalled facts may take: the setting, at most a quarter of the window budget."""
    return context.memory_tokens if budget is None else min(context.memory_tokens, budget // 4)


def recall_facts(memory: UserMemory, query: str, limit: int, count: TokenCounter) -> list[Recalled]:
    """The facts to show for `query` (by meaning where the store can), within `limit` tokens."""
    return select(memory.search(query, RECALL_CANDIDATES), limit, count)


def topic_of(messages: Sequence[BaseMessage], chars: int = MESSAGE_CHARS) -> str:
    """What the conversation is about now: its newest user messages, up to `chars` characters."""
    texts = [str(m.text) for m in messages if isinstance(m, HumanMessage)]
    return "\n".join(texts)[-chars:]


def make_recall(
    backend: Backend, embeddings: Embeddings | None = None
) -> Callable[..., dict[str, Any]]:
    """Build the `recall` node (runs before the model call; one store read per turn)."""

    def recall(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict[str, Any]:
        """Show the user's most relevant facts in a new thread; keep them current afterwards."""
        context = Context.coerce(runtime.context)
        user = memory_on(config, context)
        recalled = state.get("recalled")
        if user is None or runtime.store is None:
            return {"recalled": []} if recalled else {}
        memory = UserMemory(runtime.store, user, embeddings)
        if recalled is None:
            query = latest_user_text(state.get("messages", []))
            serving = backend.for_run(context)
            limit = memory_budget(context, serving.budget(context))
            return {"recalled": recall_facts(memory, query, limit, serving.count_tokens(context))}
        if not recalled:
            return {}
        items = runtime.store.batch([GetOp(memory.namespace, shown["key"]) for shown in recalled])
        current = checked([i if isinstance(i, Item) else None for i in items], recalled)
        return {} if current is None else {"recalled": current}

    return recall


def extraction_prompt(known: Sequence[Fact], text: str) -> list[BaseMessage]:
    """The extractor's input: instructions, known facts, worked examples, the user's message."""
    facts = "\n".join(f"- {fact.line}" for fact in known) or "(none yet)"
    prompt: list[BaseMessage] = [
        SystemMessage(content=f"{EXTRACT_INSTRUCTIONS}\n\nKnown facts about the user:\n{facts}")
    ]
    for question, answer in EXAMPLES:
        prompt += [HumanMessage(content=question), AIMessage(content=answer)]
    shortened = text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS]
    return [*prompt, HumanMessage(content=shortened)]


def thread_of(runtime: Runtime[Context], config: RunnableConfig) -> str:
    """The run's thread id ('' outside a thread)."""
    info = runtime.execution_info
    if info is not None and info.thread_id:
        return str(info.thread_id)
    return str((config.get("configurable") or {}).get("thread_id") or "")


def quiet(model: Any) -> Any:
    """A model whose tokens stay out of `messages` streams (clients see replies only)."""
    return model.with_config(tags=[TAG_NOSTREAM])


def make_remember(
    backend: Backend, embeddings: Embeddings | None = None
) -> Callable[..., dict[str, Any]]:
    """Build the `remember` node: after the reply, learn facts from the user's message."""

    def remember(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict[str, Any]:
        """Store the facts the user's latest message states (a failure only loses those)."""
        context = Context.coerce(runtime.context)
        user = memory_on(config, context)
        text = latest_user_text(state.get("messages", [])).strip()
        if user is None or runtime.store is None or not text:
            return {}
        memory = UserMemory(runtime.store, user, embeddings)
        quick = dataclasses.replace(context, temperature=0.0, max_reply_tokens=EXTRACT_TOKENS)
        try:
            known = memory.search(text, KNOWN_FACTS)
            model = backend.for_run(context).chat_model(quick)
            reply = quiet(model).invoke(extraction_prompt(known, text), config)
            for topic, fact in parse_facts(
                str(reply.text), cut=hit_length_limit(reply.response_metadata)
            ):
                memory.put(topic, fact, source=thread_of(runtime, config))
        except Exception:  # the turn is done and saved: losing one message's facts is the worst
            log.warning("Learning facts from the latest message failed.", exc_info=True)
        return {}

    return remember
