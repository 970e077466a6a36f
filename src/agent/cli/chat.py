"""`agent chat` (interactive) and `agent ask` (one-shot, scriptable)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from agent.cli import threads as thread_ops
from agent.cli.input import LineReader, PromptReader, Reader
from agent.cli.reply import NoView, Streamed, eviction_note, stream_reply
from agent.cli.services import Services, history_file
from agent.cli.session import ChatSession, ChatSettings
from agent.cli.terminal import Terminal
from agent.cli.variables import parse_assignments
from agent.errors import (
    AgentError,
    MissingVariableError,
    UnknownPersonaError,
    UnknownVariableError,
)
from agent.memory.errors import ThreadNotFoundError
from agent.personas import get_persona
from agent.settings import text_table

# LangChain, LangGraph, the database drivers and the model load inside the functions that use
# them (types under TYPE_CHECKING), so `agent --version` and `agent -h` start fast.
if TYPE_CHECKING:
    from agent.chatbot import Chatbot

F = TypeVar("F", bound=Callable[..., Any])

# Help screens fit 80 columns: click indents the epilog by two.
ENVIRONMENT_HELP = "\b\nEnvironment (options win over these):\n" + text_table(
    ("run", "persona", "model", "memory", "cli"), width=78
)

SHELL_THREAD_LIST = "agent threads list"

# Shown while LangChain, the database and the thread load, so the screen is never blank.
STARTING = "Starting…"


def check_persona(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Reject an unknown persona as a usage error that lists the available ones."""
    if value is None:
        return None
    try:
        get_persona(value)
    except UnknownPersonaError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from error
    except AgentError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from error
    return value


def check_vars(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str]:
    """--var KEY=VALUE words as a mapping (a malformed one is a usage error naming it)."""
    try:
        return parse_assignments(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from error


def check_thread(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an empty -t (it used to start a new thread without a word)."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "the thread id is empty: give an id or a prefix from `agent threads list`, or "
            "leave -t out for a new thread.",
            ctx=ctx,
            param=param,
        )
    return value


@dataclass(frozen=True)
class Opening:
    """The options chat and ask share: which thread, which persona, which model settings."""

    persona: str | None
    thread: str | None
    continue_: bool
    persona_vars: dict[str, str]
    model: str | None
    temperature: float | None
    no_stream: bool


def conversation_options(function: F) -> F:
    """Add the shared options; the command receives them as one `opening: Opening` argument."""

    @functools.wraps(function)
    def with_opening(*args: Any, **kwargs: Any) -> Any:
        names = [f.name for f in fields(Opening)]
        opening = Opening(**{name: kwargs.pop(name) for name in names})
        return function(*args, opening=opening, **kwargs)

    options = [
        click.option(
            "-p",
            "--persona",
            metavar="NAME",
            callback=check_persona,
            help="Persona to talk to (see `agent personas list`). On an existing thread it "
            "switches the thread's persona. [env: AGENT_PERSONA, new threads only]",
        ),
        click.option(
            "-t",
            "--thread",
            "thread",
            metavar="ID",
            callback=check_thread,
            help="Continue this thread (a unique prefix of its id is enough).",
        ),
        click.option(
            "-c",
            "--continue",
            "continue_",
            is_flag=True,
            help="Continue the most recently updated thread.",
        ),
        click.option(
            "--var",
            "persona_vars",
            metavar="KEY=VALUE",
            multiple=True,
            callback=check_vars,
            help="A persona variable, e.g. --var user_name=Ada (repeat for more; see "
            "`agent personas show NAME`).",
        ),
        click.option(
            "-m",
            "--model",
            metavar="NAME",
            envvar="AGENT_MODEL",
            show_envvar=True,
            help="Model name (default: the backend's), or provider:model, e.g. "
            "anthropic:claude-sonnet-4-5.",
        ),
        click.option(
            "--temperature",
            type=click.FloatRange(0, 2),
            envvar="AGENT_TEMPERATURE",
            show_envvar=True,
            help="Sampling temperature (default 0.7).",
        ),
        click.option(
            "--no-stream",
            "no_stream",
            is_flag=True,
            help="Show the reply when it is complete instead of as it is written.",
        ),
    ]
    wrapped: Any = with_opening
    for option in reversed(options):
        wrapped = option(wrapped)
    return cast(F, wrapped)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the package's errors into one-line CLI errors (exit 1)."""
    try:
        yield
    except ThreadNotFoundError as error:
        message = thread_ops.not_found_message(error, SHELL_THREAD_LIST)
        raise click.ClickException(message) from error
    except AgentError as error:
        raise click.ClickException(str(error)) from error
    except ValueError as error:  # settings: a bad AGENT_BACKEND, AGENT_MAX_TURNS...
        raise click.ClickException(str(error)) from error


def thread_to_open(services: Services, opening: Opening) -> str | None:
    """The thread id -t/-c ask for (None: a new thread)."""
    if opening.thread is not None and opening.continue_:
        raise click.UsageError("Use either -t/--thread or -c/--continue, not both.")
    if opening.continue_:
        return thread_ops.latest_thread_id(services)
    if opening.thread is not None:
        return thread_ops.resolve_thread_id(services, opening.thread)
    return None


def open_chatbot(services: Services, opening: Opening) -> Chatbot:
    """The Chatbot for the options given (thread errors are exit 1, option clashes exit 2)."""
    thread_id = thread_to_open(services, opening)
    try:
        return services.chatbot(
            opening.persona,
            thread_id,
            persona_vars=opening.persona_vars,
            model=opening.model,
            temperature=opening.temperature,
        )
    except (UnknownVariableError, MissingVariableError) as error:
        raise click.BadParameter(str(error), param_hint="'--var'") from error


def load_model(services: Services, terminal: Terminal, model: str | None) -> None:
    """Start the embedded model with a spinner (the screen is never blank), then check -m.

    A model name the backend cannot serve is refused here, before the first message.
    """
    if services.needs_model_load(model):
        with terminal.status("Loading the embedded model…"):
            services.load_model(model)
    services.check_model(model)


def make_reader() -> Reader:
    """prompt_toolkit when a person is typing, plain lines from a pipe otherwise."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return PromptReader(history_file())
    return LineReader(sys.stdin)


@click.command(
    epilog=ENVIRONMENT_HELP
    + """

\b
Examples:
  agent chat
  agent chat -p tutor
  agent chat -c                  # continue the most recent thread
  agent chat -t 3f2a             # continue thread 3f2a (agent threads list)
  OPENAI_BASE_URL=http://localhost:11434/v1 agent chat -m llama3.2
"""
)
@conversation_options
@click.pass_obj
def chat(services: Services, opening: Opening) -> None:
    r"""Chat interactively (/help lists the commands).

    Type /quit or press Ctrl-D to leave. Replies stream as they are written and render as
    Markdown. Enter sends; end a line with \ or press Esc then Enter for more lines (a ```
    fence also keeps going until it closes). Ctrl-C stops a reply; Ctrl-C at the prompt leaves.
    """
    terminal = Terminal()
    with user_errors():
        with terminal.status(STARTING):
            bot = open_chatbot(services, opening)
            settings = ChatSettings(
                model=opening.model, temperature=opening.temperature, stream=not opening.no_stream
            )
            session = ChatSession(services, terminal, bot, settings)
            header = session.header()
        terminal.note(header)
        if opening.thread is not None or opening.continue_:
            session.show_last_exchange()
        load_model(services, terminal, opening.model)
        session.loop(make_reader())


def read_question(words: tuple[str, ...]) -> str:
    """The question from the arguments, or from stdin for '-' or when piped with no arguments."""
    if words == ("-",) or (not words and not sys.stdin.isatty()):
        return sys.stdin.read()
    if not words:
        raise click.UsageError("Give a question, or pipe one in (agent ask - < file).")
    return " ".join(words)


@click.command(
    epilog="""\b
Examples:
  agent ask "What is a Python list?"
  agent ask -p tutor What is a tuple?
  echo "Explain closures" | agent ask
  git diff | agent ask -p code_reviewer -
  agent ask --json "Hi" | jq -r .thread_id   # remember the thread...
  agent ask -t 3f2a "And a dict?"             # ...and continue it
  agent ask -c "One more question"            # continue the most recent one
"""
)
@conversation_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (thread_id, persona, reply) instead of the text.",
)
@click.option("--print-thread", is_flag=True, help="Print the thread id on stderr afterwards.")
@click.argument("question", nargs=-1)
@click.pass_obj
def ask(
    services: Services,
    opening: Opening,
    as_json: bool,
    print_thread: bool,
    question: tuple[str, ...],
) -> None:
    """Ask one question and print the answer (saved as a thread).

    The answer streams as it is written. QUESTION is the rest of the command line; use - (or
    pipe text in with no QUESTION) to read it from stdin.
    """
    text = read_question(question)
    if not text.strip():
        raise click.UsageError("The question is empty.")
    terminal = Terminal(rich=False if as_json else None)
    with user_errors():
        with terminal.status(STARTING):
            bot = open_chatbot(services, opening)
        load_model(services, terminal, opening.model)
        streamed = answer(
            bot,
            terminal,
            text,
            stream=not (opening.no_stream or as_json),
            quiet=as_json,
            backend=services.backend_label(opening.model),
        )
    if as_json:
        cut = streamed.report is not None and streamed.report.cut
        document = {
            "thread_id": bot.thread_id,
            "persona": bot.persona,
            "reply": streamed.text,
            "cut": cut,
        }
        click.echo(json.dumps(document, ensure_ascii=False))
    if print_thread:
        click.echo(bot.thread_id, err=True)


def answer(
    bot: Chatbot, terminal: Terminal, text: str, *, stream: bool, quiet: bool, backend: str
) -> Streamed:
    """Stream one reply to the terminal (or just collect it when quiet).

    Raises:
        click.exceptions.Exit: 130 when the user stopped the reply with Ctrl-C (it is saved).
        AgentError: The package's own errors (one line, exit 1 through `user_errors`).
        click.ClickException: Any other failure of the model call.
    """
    view = NoView() if quiet else terminal.reply_view(stream)
    try:
        streamed = stream_reply(bot, bot.stream(text), view)
    except KeyboardInterrupt:  # a second Ctrl-C
        raise click.exceptions.Exit(130) from None
    except AgentError:
        raise
    except Exception as error:
        raise click.ClickException(thread_ops.describe_failure(error, backend)) from error
    if streamed.stopped:
        raise click.exceptions.Exit(130)
    note = eviction_note(streamed.report, "it no longer sees them (the thread keeps them)")
    if note:
        click.echo(f"Note: {note}.", err=True)
    return streamed
