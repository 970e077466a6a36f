"""Threads as the CLI shows them: rows, id prefixes, transcripts and exports (on agent.memory)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from agent.cli.reply import reply_mark
from agent.cli.services import Services
from agent.memory.errors import ThreadNotFoundError
from agent.personas import load_personas

# LangChain, LangGraph, the database drivers and the model load inside the functions that use
# them (types under TYPE_CHECKING), so `agent --version` and `agent -h` start fast.
if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from agent.chatbot import Chatbot
    from agent.memory import ThreadInfo

THREAD_HEADERS = ("thread", "updated", "persona", "messages", "title")
CliFormat = Literal["md", "json"]


def saved_threads(services: Services) -> list[ThreadInfo]:
    """Saved threads, most recently updated first."""
    from agent.memory import list_threads

    return list_threads(services.open_memory())


def resolve_thread_id(services: Services, wanted: str) -> str:
    """The full id of the thread named by its id or a unique prefix of it (git-style)."""
    from agent.memory import get_thread, list_threads

    memory = services.open_memory()
    try:
        return get_thread(memory, wanted).id
    except ThreadNotFoundError:
        pass
    matches = [info.id for info in list_threads(memory) if info.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousThreadError(wanted, len(matches))
    raise ThreadNotFoundError(wanted)


class AmbiguousThreadError(ThreadNotFoundError):
    """Raised when an id prefix matches several threads."""

    def __init__(self, prefix: str, count: int) -> None:
        super().__init__(prefix)
        self.args = (f"Thread id prefix {prefix!r} matches {count} threads; type more of it.",)


def latest_thread_id(services: Services) -> str:
    """The most recently updated thread, for -c/--continue."""
    from agent.memory import list_threads

    infos = list_threads(services.open_memory(), limit=1)
    if not infos:
        raise NoThreadsError()
    return infos[0].id


def not_found_message(error: ThreadNotFoundError, lister: str) -> str:
    """A missing-thread error naming the command that lists threads where the user is.

    `lister` is `agent threads list` in the shell and `/threads` in a chat.
    """
    if isinstance(error, NoThreadsError):
        return str(error)
    if isinstance(error, AmbiguousThreadError):
        return f"{error} `{lister}` lists them."
    return f"No saved thread {error.thread_id!r}. `{lister}` lists the saved ones."


class NoThreadsError(ThreadNotFoundError):
    """Raised by -c/--continue when nothing has been saved yet."""

    def __init__(self) -> None:
        super().__init__("")
        self.args = ("No saved thread to continue yet: start one without -c/--continue.",)


def thread_messages(services: Services, thread_id: str) -> list[BaseMessage]:
    """The whole conversation (archived messages, then the window)."""
    from agent.memory import transcript

    return transcript(services.open_memory(), thread_id)


def remove_thread(services: Services, thread_id: str) -> None:
    """Delete a thread: checkpoints, transcript and listing."""
    from agent.memory import delete_thread

    if not delete_thread(services.open_memory(), thread_id):
        raise ThreadNotFoundError(thread_id)


def exported(services: Services, thread_id: str, fmt: CliFormat) -> str:
    """A thread's whole transcript as Markdown ('md') or JSON ('json')."""
    from agent.memory import export_thread

    return export_thread(services.open_memory(), thread_id, "json" if fmt == "json" else "markdown")


def message_mark(message: BaseMessage) -> str | None:
    """The mark of a saved reply that is incomplete: stopped by the user or cut by the limit."""
    from agent.chatbot import CUT, INTERRUPTED, REPLY_TOKENS

    meta = message.response_metadata
    tokens = meta.get(REPLY_TOKENS)
    return reply_mark(
        interrupted=bool(meta.get(INTERRUPTED)),
        cut=bool(meta.get(CUT)),
        tokens=int(tokens) if isinstance(tokens, int) else None,
    )


def window_start(bot: Chatbot) -> int:
    """How many of the thread's messages (from the start) are outside the model's window."""
    return int(bot.graph.get_state(bot.config).values.get("archived", 0))


def speaker(message: BaseMessage) -> str:
    """Who said it, in plain words."""
    from langchain_core.messages import AIMessage, HumanMessage

    if isinstance(message, HumanMessage):
        return "you"
    if isinstance(message, AIMessage):
        return "assistant"
    return message.type


def last_exchange(messages: list[BaseMessage]) -> list[BaseMessage]:
    """The last user message and the replies after it (tool traffic left out)."""
    from langchain_core.messages import AIMessage, HumanMessage

    starts = [i for i, message in enumerate(messages) if isinstance(message, HumanMessage)]
    if not starts:
        return []
    tail = messages[starts[-1] :]
    return [m for m in tail if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and m.text)]


def message_line(message: BaseMessage) -> str:
    """One message for /history and `threads show`."""
    mark = message_mark(message)
    return f"{speaker(message)}: {message.text}{f' {mark}' if mark else ''}"


def short_id(thread_id: str) -> str:
    """The first characters of a thread id: enough to tell threads apart and to /switch."""
    return thread_id[:8]


def thread_row(info: ThreadInfo) -> list[str]:
    """A thread as table cells (matching THREAD_HEADERS)."""
    updated = info.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return [short_id(info.id), updated, info.persona, str(info.messages), info.title]


def thread_json(info: ThreadInfo) -> dict[str, Any]:
    """A thread for --json output."""
    return info.to_dict()


def persona_rows(current: str | None = None) -> list[list[str]]:
    """Personas as table cells: a mark for the current one, name, description."""
    return [
        ["*" if name == current else "", name, persona.description]
        for name, persona in sorted(load_personas().items())
    ]


def describe_failure(error: BaseException, backend: str) -> str:
    """One line for a model-call failure the models package did not type."""
    detail = " ".join(str(error).split()) or type(error).__name__
    return f"The model call failed ({backend}): {detail[:200]}"
