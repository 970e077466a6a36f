"""The interactive chat: a loop of messages and slash commands over one current thread."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli import threads as thread_ops
from agent.cli.input import Reader
from agent.cli.reply import eviction_note, stream_reply
from agent.cli.services import Services
from agent.cli.terminal import Terminal
from agent.cli.threads import short_id
from agent.cli.variables import carried_vars, describe_vars, parse_persona_args
from agent.errors import AgentError, MissingVariableError
from agent.memory.config import data_dir
from agent.memory.errors import ThreadNotFoundError

# LangChain, LangGraph, the database drivers and the model load inside the functions that use
# them (types under TYPE_CHECKING), so `agent --version` and `agent -h` start fast.
if TYPE_CHECKING:
    from agent.chatbot import Chatbot

HELP = """\
Commands:
  /help              this list
  /new               start a new thread (same persona)
  /persona [NAME] [KEY=VALUE ...]
                     show the persona, or switch this thread to NAME and/or set its
                     variables (e.g. /persona tutor user_name=Ada; quote values with spaces)
  /personas          list the personas
  /history           show this thread's messages (and where the model's window starts)
  /continue          let the model go on with a reply cut by the length limit or Ctrl-C
  /memory [forget TOPIC | clear]
                     show the summary of what the window evicted and what the bot
                     remembers about you; forget one fact, or all of them
  /threads           list saved threads
  /switch ID         continue another thread (a unique prefix of its id is enough)
  /export [PATH]     save this thread as Markdown (.json for JSON);
                     default: the data directory's exports/thread-<id>.md
  /quit              leave (also /exit, Ctrl-D, or Ctrl-C at the prompt)

Input:
  Enter sends. For several lines end a line with \\ or press Esc then Enter;
  text inside a ``` fence is one message until the closing ```.
  Ctrl-C while a reply streams stops it (the partial reply is kept, marked interrupted).
  Start a message with // to send a line that begins with /."""

PERSONA_USAGE = "/persona [NAME] [KEY=VALUE ...]"
MEMORY_USAGE = "/memory [forget TOPIC | clear]"
COMMANDS = (
    *("help", "new", "persona", "personas", "history", "continue", "threads", "switch", "export"),
    *("memory", "quit"),
)
WINDOW_STARTS = "── the model sees from here on (above: moved out of its window) ──"
ALIASES = {"exit": "quit", "q": "quit", "?": "help", "h": "help"}


@dataclass
class ChatSettings:
    """The options `agent chat` was started with."""

    model: str | None = None
    temperature: float | None = None
    stream: bool = True


def default_export_path(thread_id: str) -> Path:
    """Where /export writes without a PATH: the data directory, not wherever chat was started."""
    return data_dir() / "exports" / f"thread-{short_id(thread_id)}.md"


def parse_command(text: str) -> tuple[str, str] | None:
    """Split '/name args' into (name, args); None for a normal message (including '//...')."""
    if not text.startswith("/") or text.startswith("//"):
        return None
    name, _, arg = text[1:].strip().partition(" ")
    name = name.lower()
    return ALIASES.get(name, name), arg.strip()


def unknown_command_hint(name: str) -> str:
    """Suggest the closest command, and /help."""
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    guess = f" Did you mean /{close[0]}?" if close else ""
    return f"Unknown command /{name}.{guess} Type /help for the list."


class ChatSession:
    """Reads messages, answers them on the current thread, and runs slash commands."""

    def __init__(
        self, services: Services, terminal: Terminal, bot: Chatbot, settings: ChatSettings
    ) -> None:
        self.services = services
        self.terminal = terminal
        self.bot = bot
        self.settings = settings
        self.handlers: dict[str, Callable[[str], bool]] = {
            "help": self.cmd_help,
            "new": self.cmd_new,
            "persona": self.cmd_persona,
            "personas": self.cmd_personas,
            "history": self.cmd_history,
            "threads": self.cmd_threads,
            "switch": self.cmd_switch,
            "export": self.cmd_export,
            "continue": self.cmd_continue,
            "memory": self.cmd_memory,
            "quit": lambda arg: False,
        }

    # --- the loop ---------------------------------------------------------------------------

    def header(self) -> str:
        """One line: who is talking, on which thread, through which backend."""
        return (
            f"persona {self.bot.persona} · thread {short_id(self.bot.thread_id)} · "
            f"{self.services.backend_label(self.settings.model)} · /help for commands"
        )

    def prompt(self) -> str:
        """The prompt names the persona, so a switch is visible."""
        return f"{self.bot.persona}> "

    def loop(self, reader: Reader) -> None:
        """Chat until the user leaves."""
        while True:
            prompt = self.prompt()
            text = reader.read(prompt)
            if text is None:
                return
            if not reader.shows_input and text.strip():
                self.terminal.line(prompt + text)  # piped: each exchange starts visibly
            if not self.handle(text):
                return

    def show_last_exchange(self) -> None:
        """On a resumed thread, show where the conversation was (its last exchange)."""
        messages = thread_ops.thread_messages(self.services, self.bot.thread_id)
        last = thread_ops.last_exchange(messages)
        if not last:
            return
        self.terminal.note(f"Last exchange ({len(messages)} messages; /history shows them all):")
        for message in last:
            self.terminal.line(thread_ops.message_line(message))

    def handle(self, text: str) -> bool:
        """Answer one input; False means leave."""
        if not text.strip():
            return True  # an empty line is not a message
        command = parse_command(text.strip())
        if command is None:
            self.turn(text[1:] if text.startswith("//") else text)
            return True
        name, arg = command
        handler = self.handlers.get(name)
        if handler is None:
            self.terminal.error(unknown_command_hint(name))
            return True
        try:
            return handler(arg)
        except ThreadNotFoundError as error:
            self.terminal.error(thread_ops.not_found_message(error, "/threads"))
            return True
        except AgentError as error:
            self.terminal.error(str(error))
            return True

    def turn(self, text: str) -> None:
        """Stream one reply to a message."""
        self.show_reply(self.bot.stream(text))

    def show_reply(self, pieces: Iterator[str]) -> None:
        """Stream a reply; Ctrl-C stops it and keeps what arrived; errors keep the chat alive."""
        view = self.terminal.reply_view(self.settings.stream)
        try:
            streamed = stream_reply(self.bot, pieces, view)
        except KeyboardInterrupt:  # a second Ctrl-C: the reply is saved, marked interrupted
            return
        except AgentError as error:
            self.terminal.error(str(error))
            return
        except Exception as error:  # a model client's own error
            self.terminal.error(
                thread_ops.describe_failure(error, self.services.backend_label(self.settings.model))
            )
            return
        note = eviction_note(streamed.report, "/history shows what it sees")
        if note:
            self.terminal.note(note)

    # --- commands ---------------------------------------------------------------------------

    def cmd_help(self, arg: str) -> bool:
        """List the commands and input tips."""
        self.terminal.line(HELP)
        return True

    def _use(self, bot: Chatbot, message: str) -> None:
        self.bot.wait()  # what the last turn taught is stored before another thread recalls
        self.bot = bot
        self.terminal.note(f"{message} · {self.header()}")

    def _chatbot(
        self, persona: str | None, thread_id: str | None, persona_vars: dict[str, Any]
    ) -> Chatbot:
        """A Chatbot with the settings this chat was started with."""
        return self.services.chatbot(
            persona,
            thread_id,
            persona_vars=persona_vars,
            model=self.settings.model,
            temperature=self.settings.temperature,
        )

    def cmd_new(self, arg: str) -> bool:
        """Start a new thread, keeping the persona and its variables."""
        persona = self.bot.persona
        self._use(self._chatbot(persona, None, carried_vars(self.bot, persona)), "New thread")
        return True

    def cmd_persona(self, arg: str) -> bool:
        """Show the persona, or switch it (NAME) and/or set its variables (KEY=VALUE ...)."""
        try:
            name, given = parse_persona_args(arg)
        except ValueError as error:
            self.terminal.error(f"{error} Usage: {PERSONA_USAGE}")
            return True
        if name is None and not given:
            shown = describe_vars(carried_vars(self.bot, self.bot.persona))
            self.terminal.line(f"Persona: {self.bot.persona}{shown}")
            return True
        persona = name or self.bot.persona
        values = {**carried_vars(self.bot, persona), **given}
        try:  # a fresh Chatbot: variables the old persona had but this one lacks are dropped
            self.bot = self._chatbot(persona, self.bot.thread_id, values)
        except MissingVariableError as error:
            self.terminal.error(
                f"Persona {persona!r} needs the variable {error.variable!r}: "
                f"/persona {persona} {error.variable}=..."
            )
            return True
        self.terminal.note(f"Persona: {persona}{describe_vars(values)} (from the next message on)")
        return True

    def cmd_personas(self, arg: str) -> bool:
        """List personas, marking the current one."""
        rows = thread_ops.persona_rows(current=self.bot.persona)
        self.terminal.table(["", "persona", "description"], rows)
        return True

    def cmd_history(self, arg: str) -> bool:
        """Show this thread's messages, marking where the model's window starts."""
        messages = thread_ops.thread_messages(self.services, self.bot.thread_id)
        if not messages:
            self.terminal.note("No messages yet.")
            return True
        start = thread_ops.window_start(self.bot)
        for index, message in enumerate(messages):
            if index == start and start > 0:
                self.terminal.note(WINDOW_STARTS)
            self.terminal.line(thread_ops.message_line(message))
        return True

    def cmd_memory(self, arg: str) -> bool:
        """Show the summary and the remembered facts, or forget one fact or all of them."""
        action, _, topic = arg.partition(" ")
        if not action:
            self.show_memory()
        elif action == "forget" and topic.strip():
            forgotten = self.services.user_memory().forget(topic.strip())
            self.terminal.note(f"Forgot {topic.strip()}" if forgotten else "Nothing on that topic.")
        elif action == "clear" and not topic:
            facts = self.services.user_memory()
            self.terminal.note(f"Forgot {facts.clear()} fact(s) about {facts.user_id}")
        else:
            self.terminal.error(f"Usage: {MEMORY_USAGE}")
        return True

    def show_memory(self) -> None:
        """The thread's running summary, then what the bot remembers about the user."""
        summary = self.bot.summary()
        self.terminal.line("Summary of what the window evicted:")
        self.terminal.line(f"  {summary}" if summary else "  (nothing evicted yet)")
        if self.services.user() is None:
            self.terminal.note("No long-term memory: start chat with --user NAME or AGENT_USER_ID.")
            return
        facts = self.services.user_memory()
        remembered = facts.facts()
        self.terminal.line(f"Remembered about {facts.user_id}:")
        for fact in remembered:
            self.terminal.line(f"  {fact.line}")
        if not remembered:
            self.terminal.line("  (nothing yet)")

    def cmd_continue(self, arg: str) -> bool:
        """Ask the model to go on with a reply that was cut short (by the limit or Ctrl-C)."""
        self.show_reply(self.bot.stream_continue())
        return True

    def cmd_threads(self, arg: str) -> bool:
        """List saved threads, newest first, marking the current one."""
        infos = thread_ops.saved_threads(self.services)
        if not infos:
            self.terminal.note("No saved threads yet.")
            return True
        rows = [
            ["*" if info.id == self.bot.thread_id else "", *thread_ops.thread_row(info)]
            for info in infos
        ]
        self.terminal.table(["", *thread_ops.THREAD_HEADERS], rows)
        return True

    def cmd_switch(self, arg: str) -> bool:
        """Continue another thread."""
        if not arg:
            self.terminal.error("Usage: /switch ID (see /threads).")
            return True
        thread_id = thread_ops.resolve_thread_id(self.services, arg)
        self._use(self._chatbot(None, thread_id, {}), "Switched")
        self.show_last_exchange()
        return True

    def cmd_export(self, arg: str) -> bool:
        """Save this thread to a file (Markdown, or JSON for a .json path)."""
        if not thread_ops.thread_messages(self.services, self.bot.thread_id):
            self.terminal.note("Nothing to export yet: this thread has no messages.")
            return True
        path = Path(arg).expanduser() if arg else default_export_path(self.bot.thread_id)
        fmt: thread_ops.CliFormat = "json" if path.suffix.lower() == ".json" else "md"
        text = thread_ops.exported(self.services, self.bot.thread_id, fmt)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            self.terminal.error(f"Cannot write {path}: {error.strerror or error}.")
            return True
        self.terminal.note(f"Exported to {path}")
        return True
