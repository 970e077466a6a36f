"""The running summary: what the window evicted, folded into a few sentences the model keeps seeing.

Pure functions (each unit-tested) decide what a turn evicts once its reply is out, render evicted
messages for the summarizer (tool rounds as what was learned, never replayed), and keep a summary
within its token budget in whole sentences. `fold` and `condense` are the two model calls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agent.context import DEFAULT_PERSONA, Context
from agent.errors import MessageTooLargeError
from agent.memory.archive import StoreArchive
from agent.memory.longterm import UserMemory
from agent.models.backend import Backend
from agent.models.replies import hit_length_limit
from agent.personas import get_persona
from agent.recall import memory_block, memory_budget, memory_on, quiet, recall_facts, topic_of
from agent.state import State
from agent.window import TokenCounter, exchanges, exchanges_to_keep, valid_messages

log = logging.getLogger(__name__)

MIN_PIECE_TOKENS = 256  # the least evicted text one summarizer call is given
MESSAGE_CHARS = 2000  # per message shown to the summarizer; a longer one is shortened visibly
SUMMARY_HEADER = "Earlier in this conversation (a summary of messages you no longer see):"
FOLD_INSTRUCTIONS = (
    "You keep the running summary of a conversation for an assistant that can no longer see "
    "its older messages. Update the summary with the new messages. Keep what matters later: "
    "names, facts the user gave about themselves, decisions, what tools found out, and open "
    "questions. When a new fact contradicts an older one, keep only the new one. Write short, "
    "complete sentences, at most {words} words in all. Reply with the summary only."
)
CONDENSE_INSTRUCTIONS = (
    "Shorten this summary of a conversation to at most {words} words. Keep names, facts about "
    "the user, decisions and open questions; drop the rest. Write complete sentences. Reply "
    "with the summary only."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_TERMINAL = (".", "!", "?", ")", '"', "'", "”", "’")


def summary_block(summary: str) -> str:
    """The text appended to the system message, or '' without a summary."""
    return f"{SUMMARY_HEADER}\n{summary}" if summary.strip() else ""


def _shortened(text: str, limit: int = MESSAGE_CHARS) -> str:
    """The text, or its start plus a note saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit} more characters]"


def _tool_names(messages: Sequence[BaseMessage]) -> dict[str, str]:
    """Tool call id -> tool name, from the assistant messages that made the calls."""
    return {
        str(call["id"]): call["name"]
        for message in messages
        if isinstance(message, AIMessage)
        for call in message.tool_calls
        if call.get("id")
    }


def render_messages(messages: Sequence[BaseMessage]) -> str:
    """Evicted messages as plain text lines for the summarizer.

    Tool rounds become what was asked and what came back ("Tool weather returned: ..."), so
    the summary records what was learned; no tool message is replayed to the summarizer.
    """
    names = _tool_names(messages)
    lines: list[str] = []
    for message in messages:
        text = _shortened(str(message.text).strip())
        if isinstance(message, HumanMessage):
            lines.append(f"User: {text}")
        elif isinstance(message, ToolMessage):
            name = message.name or names.get(message.tool_call_id, "a tool")
            lines.append(f"Tool {name} returned: {text}")
        elif isinstance(message, AIMessage):
            for call in message.tool_calls:
                arguments = _shortened(json.dumps(call["args"], ensure_ascii=False), 200)
                lines.append(f"Assistant used tool {call['name']} with {arguments}")
            if text:
                cut = " (interrupted)" if message.response_metadata.get("interrupted") else ""
                lines.append(f"Assistant{cut}: {text}")
    return "\n".join(lines)


def text_tokens(text: str, count: TokenCounter) -> int:
    """Tokens a text costs in a system message (0 for no text)."""
    return count([SystemMessage(content=text)]) if text else 0


def words_for(max_tokens: int) -> int:
    """A word limit to ask the model for, well inside a token budget (~1.3 tokens per word)."""
    return max(8, int(max_tokens * 0.6))


def complete_sentences(text: str, *, cut: bool) -> str:
    """The text without a trailing unfinished sentence when the model was cut off."""
    text = text.strip()
    if not cut or text.endswith(_TERMINAL):
        return text
    pieces = _SENTENCE_END.split(text)
    return " ".join(piece.strip() for piece in pieces[:-1] if piece.strip())


def whole_sentences(text: str, max_tokens: int, count: TokenCounter) -> str:
    """The leading whole sentences of `text` that fit in `max_tokens` (never a partial one)."""
    kept: list[str] = []
    for sentence in (piece.strip() for piece in _SENTENCE_END.split(text.strip())):
        if not sentence:
            continue
        if text_tokens(" ".join([*kept, sentence]), count) > max_tokens:
            break
        kept.append(sentence)
    return " ".join(kept)


def plan_compaction(
    messages: Sequence[BaseMessage],
    *,
    max_turns: int,
    count_tokens: TokenCounter,
    max_tokens: int | None,
    low_water: float,
    fixed_tokens: int,
) -> list[BaseMessage]:
    """The messages to evict once a reply is out, so the next turn starts without evicting.

    Plans the window as if the next exchange had already arrived and were as long as the latest
    one, which is the decision `trim` would take at the start of the next turn. Evicting now
    changes the prompt prefix once (together with the new summary) instead of twice. The
    latest exchange always stays (a window of one exchange leaves `trim` to evict it).
    """
    groups = exchanges(valid_messages(messages, turn_pending=False))
    if not groups:
        return []
    costs = [count_tokens(g) for g in groups] if max_tokens is not None else [0] * len(groups)
    try:
        kept = exchanges_to_keep(
            [*costs, costs[-1]],
            fixed_tokens=fixed_tokens,
            max_turns=max_turns,
            max_tokens=max_tokens,
            low_water=low_water,
        )
    except MessageTooLargeError:  # the latest exchange alone fills the budget
        kept = 1
    cut = len(groups) - max(kept - 1, 1)  # the turn's own exchange stays: readers see the reply
    return [message for group in groups[:cut] for message in group]


def fold_prompt(summary: str, transcript: str, max_tokens: int) -> list[BaseMessage]:
    """The summarizer's input: instructions, the summary so far and the newly evicted messages."""
    instructions = FOLD_INSTRUCTIONS.format(words=words_for(max_tokens))
    body = f"Summary so far:\n{summary.strip() or '(none yet)'}\n\nNew messages:\n{transcript}"
    return [SystemMessage(content=instructions), HumanMessage(content=body)]


def condense_prompt(summary: str, max_tokens: int) -> list[BaseMessage]:
    """The input asking the model to shorten a summary that outgrew its budget."""
    instructions = CONDENSE_INSTRUCTIONS.format(words=words_for(max_tokens))
    return [SystemMessage(content=instructions), HumanMessage(content=summary)]


def _ask(model: BaseChatModel, prompt: list[BaseMessage], config: RunnableConfig | None) -> str:
    """One summarizer call: the reply's text without a sentence the length limit cut off."""
    reply = model.invoke(prompt, config)
    return complete_sentences(str(reply.text), cut=hit_length_limit(reply.response_metadata))


def fold(
    model: BaseChatModel,
    summary: str,
    evicted: Sequence[BaseMessage],
    *,
    max_tokens: int,
    count: TokenCounter,
    config: RunnableConfig | None = None,
) -> str:
    """The summary updated with evicted messages, within `max_tokens`, in whole sentences.

    A summary that comes back over budget is condensed by the model once more; whatever is
    still over budget is dropped a whole sentence at a time. Model errors propagate (the caller
    keeps the old summary and retries at the next eviction).

    Raises:
        ValueError: If the model returned no usable summary (the caller keeps the old one).
    """
    updated = _ask(model, fold_prompt(summary, render_messages(evicted), max_tokens), config)
    if text_tokens(updated, count) > max_tokens:
        updated = _ask(model, condense_prompt(updated, max_tokens), config)
    bounded = whole_sentences(updated, max_tokens, count)
    if not bounded:
        raise ValueError("The summarizer returned no complete sentence within the budget.")
    return bounded


# --- the `compact` node: evict after the reply, fold into the summary ------------------------


def summary_budget(context: Context, budget: int | None) -> int:
    """Tokens the summary may take: the setting, at most a quarter of the window budget."""
    return context.summary_tokens if budget is None else min(context.summary_tokens, budget // 4)


def with_memory(messages: list[BaseMessage], state: Mapping[str, Any]) -> list[BaseMessage]:
    """Append the summary, then the recalled facts, to the leading system message."""
    blocks = [summary_block(state.get("summary") or ""), memory_block(state.get("recalled"))]
    extra = "\n\n".join(block for block in blocks if block)
    if not extra:
        return messages
    if messages and isinstance(messages[0], SystemMessage):
        return [SystemMessage(content=f"{messages[0].text}\n\n{extra}"), *messages[1:]]
    return [SystemMessage(content=extra), *messages]


def system_tokens(state: Mapping[str, Any], count: TokenCounter, summary_tokens: int = 0) -> int:
    """What the system message costs: persona, summary (or `summary_tokens` if more), memories."""
    persona = get_persona(state.get("persona") or DEFAULT_PERSONA)
    system = persona.format([], state.get("persona_vars", {}))
    current = count(with_memory(system, state))
    summary = text_tokens(summary_block(state.get("summary") or ""), count)
    return current + max(0, summary_tokens - summary)


def compaction(
    state: Mapping[str, Any],
    context: Context,
    count: TokenCounter,
    budget: int | None,
    reserved: int,
) -> list[BaseMessage]:
    """What the end of this turn evicts (the system message counted with a full summary)."""
    fixed = system_tokens(state, count, summary_budget(context, budget)) + reserved
    return plan_compaction(
        state.get("messages", []),
        max_turns=context.max_turns,
        count_tokens=count,
        max_tokens=budget,
        low_water=context.low_water,
        fixed_tokens=fixed if budget is not None else 0,
    )


def compaction_due(
    state: Mapping[str, Any],
    context: Context,
    count: TokenCounter,
    budget: int | None,
    reserved: int,
) -> bool:
    """Whether the turn ends by folding messages into the summary."""
    if not context.summary:
        return False
    return bool(state.get("summary_due")) or bool(
        compaction(state, context, count, budget, reserved)
    )


def pieces(
    messages: Sequence[BaseMessage], max_tokens: int | None, count: TokenCounter
) -> list[list[BaseMessage]]:
    """Messages split (between exchanges) into pieces the summarizer can read in one call."""
    groups: list[list[BaseMessage]] = []
    for message in messages:
        if isinstance(message, HumanMessage) or not groups:
            groups.append([])
        groups[-1].append(message)
    parts: list[list[BaseMessage]] = []
    for group in groups:
        if parts and (max_tokens is None or count(parts[-1] + group) <= max_tokens):
            parts[-1] += group
        else:
            parts.append(list(group))
    return parts


def fold_pieces(
    model: BaseChatModel,
    summary: str,
    parts: Sequence[Sequence[BaseMessage]],
    *,
    max_tokens: int,
    count: TokenCounter,
    config: RunnableConfig | None = None,
) -> tuple[str, int]:
    """Fold the pieces in order; the summary and how many messages it took in.

    Stops at the first failure, keeping what was folded so far: the rest stays archived and
    is folded at the next eviction.
    """
    folded = 0
    for part in parts:
        try:
            summary = fold(model, summary, part, max_tokens=max_tokens, count=count, config=config)
        except Exception:  # the turn the user asked for is done: never fail it for the summary
            log.warning(
                "Summarizing evicted messages failed; retrying at the next eviction.", exc_info=True
            )
            break
        folded += len(part)
    return summary, folded


def make_compact(
    backend: Backend,
    reserved_tokens: int = 0,
    embeddings: Embeddings | None = None,
) -> Callable[..., dict[str, Any]]:
    """Build the `compact` node: after the reply, evict a block and fold it into the summary.

    With a user, it also picks the recalled facts afresh for what the window is about now.
    """

    def compact(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict[str, Any]:
        """Evict now what the next turn would, archive it, fold it (and any backlog) in."""
        context = Context.coerce(runtime.context)
        serving = backend.for_run(context)
        count, budget = serving.count_tokens(context), serving.budget(context)
        evict = compaction(state, context, count, budget, reserved_tokens)
        archived = state.get("archived", 0)
        summarized = min(state.get("summarized", archived), archived)
        thread_id = runtime.execution_info.thread_id if runtime.execution_info else None
        if runtime.store is None or thread_id is None:
            log.warning("No store or thread id: nothing evicted or summarized.")
            return {"summary_due": False}
        archive = StoreArchive(runtime.store)
        backlog = (
            archive.read(thread_id, archived, start=summarized) if summarized < archived else []
        )
        archive.append(thread_id, archived, evict)
        limit = summary_budget(context, budget)
        quick = dataclasses.replace(context, temperature=0.0, max_reply_tokens=limit)
        chunk = None if budget is None else max(budget - 2 * limit, MIN_PIECE_TOKENS)
        summary, folded = fold_pieces(
            quiet(serving.chat_model(quick)),
            state.get("summary") or "",
            pieces([*backlog, *evict], chunk, count),
            max_tokens=limit,
            count=count,
            config=config,
        )
        update: dict[str, Any] = {
            "messages": [RemoveMessage(id=m.id) for m in evict if m.id],
            "archived": archived + len(evict),
            "summary": summary,
            "summarized": summarized + folded,
            "summary_due": False,
            "compacted": sum(isinstance(m, HumanMessage) for m in evict),
        }
        user = memory_on(config, context)
        if evict and user is not None:  # the prefix changes anyway: recall for what is left
            gone = {id(m) for m in evict}
            kept = [m for m in state.get("messages", []) if id(m) not in gone]
            memory = UserMemory(runtime.store, user, embeddings)
            limit = memory_budget(context, budget)
            update["recalled"] = recall_facts(memory, topic_of(kept), limit, count)
        return update

    return compact
