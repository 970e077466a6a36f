"""The sliding window: pure functions over message lists that decide what the model sees.

Rules (each unit-tested):
- the window is made of whole *exchanges*: a user message and every reply, tool call and tool
  result up to the next user message, so it never starts on an assistant or tool message and a
  tool call is never separated from its results;
- messages that would make the model input invalid (stray system messages, an unanswered user
  message left by a failed turn, tool calls without results, results without calls) are dropped;
- on overflow it evicts in blocks down to a low-water mark instead of one exchange per turn, so
  the prompt prefix stays byte-identical (and prompt caches keep hitting) for many turns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from agent.errors import MessageTooLargeError

TokenCounter = Callable[[Sequence[BaseMessage]], int]
Exchange = list[BaseMessage]


@dataclass(frozen=True)
class WindowPlan:
    """What to keep, what to archive (old but valid) and what to drop (invalid) from a history."""

    keep: list[BaseMessage] = field(default_factory=list)
    evict: list[BaseMessage] = field(default_factory=list)
    drop: list[BaseMessage] = field(default_factory=list)


def tool_call_ids(message: BaseMessage) -> set[str]:
    """Return the ids of the tool calls an assistant message makes (empty for other messages)."""
    if isinstance(message, AIMessage):
        return {call_id for call in message.tool_calls if (call_id := call.get("id"))}
    return set()


def _is_complete_tool_round(exchange: Exchange, index: int) -> bool:
    """Tell whether the tool calls of exchange[index] all have results later in the exchange."""
    wanted = tool_call_ids(exchange[index])
    answered = {m.tool_call_id for m in exchange[index + 1 :] if isinstance(m, ToolMessage)}
    return wanted <= answered


def invalid_messages(messages: Sequence[BaseMessage], *, turn_pending: bool) -> list[BaseMessage]:
    """List the messages that would make the model input invalid.

    `turn_pending` says the last message is a user message whose reply is being generated now
    (inside the graph); otherwise a trailing user message is an unanswered leftover.
    """
    exchanges_, leading = _split(messages)
    invalid: list[BaseMessage] = list(leading)
    for number, exchange in enumerate(exchanges_):
        pending = turn_pending and number == len(exchanges_) - 1
        broken = _invalid_in_exchange(exchange)
        answered = len(exchange) - len(broken) > 1
        invalid.extend(broken if answered or pending else [exchange[0], *broken])
    return invalid


def _invalid_in_exchange(exchange: Exchange) -> list[BaseMessage]:
    """Find system messages, unanswered tool calls and orphan tool results inside one exchange."""
    invalid: list[BaseMessage] = []
    open_calls: set[str] = set()
    for index, message in enumerate(exchange[1:], start=1):
        if isinstance(message, SystemMessage):
            invalid.append(message)
        elif isinstance(message, ToolMessage):
            if message.tool_call_id in open_calls:
                open_calls.discard(message.tool_call_id)
            else:
                invalid.append(message)
        elif tool_call_ids(message):
            if _is_complete_tool_round(exchange, index):
                open_calls |= tool_call_ids(message)
            else:
                invalid.append(message)
    return invalid


def _split(messages: Sequence[BaseMessage]) -> tuple[list[Exchange], list[BaseMessage]]:
    """Split a history into exchanges, returning also what precedes the first user message."""
    exchanges_: list[Exchange] = []
    leading: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            exchanges_.append([message])
        elif exchanges_:
            exchanges_[-1].append(message)
        else:
            leading.append(message)
    return exchanges_, leading


def exchanges(messages: Sequence[BaseMessage]) -> list[Exchange]:
    """Group a valid history into exchanges, each starting with a user message."""
    return _split(messages)[0]


def valid_messages(messages: Sequence[BaseMessage], *, turn_pending: bool) -> list[BaseMessage]:
    """Return the history without the messages that would make the model input invalid."""
    invalid = {id(m) for m in invalid_messages(messages, turn_pending=turn_pending)}
    return [m for m in messages if id(m) not in invalid]


def overflows(
    exchange_tokens: Sequence[int], fixed_tokens: int, max_turns: int, max_tokens: int | None
) -> bool:
    """Tell whether a window of these exchanges exceeds the turn or token budget."""
    if len(exchange_tokens) > max_turns:
        return True
    return max_tokens is not None and fixed_tokens + sum(exchange_tokens) > max_tokens


def exchanges_to_keep(
    exchange_tokens: Sequence[int],
    *,
    fixed_tokens: int,
    max_turns: int,
    max_tokens: int | None,
    low_water: float,
) -> int:
    """Count how many of the newest exchanges stay after evicting down to the low-water mark.

    Evicting a block (not one exchange per turn) keeps the prompt prefix unchanged until the
    window fills up again, which is what lets prompt caches (llama.cpp, OpenAI) keep hitting.
    """
    if not exchange_tokens:
        return 0
    newest = exchange_tokens[-1]
    if max_tokens is not None and fixed_tokens + newest > max_tokens:
        raise MessageTooLargeError(fixed_tokens + newest, max_tokens)
    if not overflows(exchange_tokens, fixed_tokens, max_turns, max_tokens):
        return len(exchange_tokens)
    turn_target = max(1, math.floor(max_turns * low_water))
    token_target = None if max_tokens is None else max_tokens * low_water
    kept, used = 1, fixed_tokens + newest
    for tokens in reversed(exchange_tokens[:-1]):
        if kept >= turn_target or (token_target is not None and used + tokens > token_target):
            break
        kept, used = kept + 1, used + tokens
    return kept


def plan_window(
    messages: Sequence[BaseMessage],
    *,
    max_turns: int,
    count_tokens: TokenCounter,
    max_tokens: int | None = None,
    low_water: float = 0.6,
    fixed_tokens: int = 0,
    turn_pending: bool = True,
) -> WindowPlan:
    """Decide the window for the next model call.

    `fixed_tokens` is what the system prompt costs; it always counts against `max_tokens`.
    """
    drop = invalid_messages(messages, turn_pending=turn_pending)
    dropped = {id(m) for m in drop}
    groups = exchanges([m for m in messages if id(m) not in dropped])
    costs = (
        [count_tokens(group) for group in groups] if max_tokens is not None else [0] * len(groups)
    )
    kept = exchanges_to_keep(
        costs,
        fixed_tokens=fixed_tokens,
        max_turns=max_turns,
        max_tokens=max_tokens,
        low_water=low_water,
    )
    cut = len(groups) - kept
    evict = [m for group in groups[:cut] for m in group]
    keep = [m for group in groups[cut:] for m in group]
    return WindowPlan(keep=keep, evict=evict, drop=drop)
