"""The Chatbot facade: a thread of conversation with memory, personas and streaming."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, NoReturn

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
)
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from langgraph.types import Durability, StateSnapshot

from agent.context import Context
from agent.errors import EmptyMessageError, NothingToContinueError
from agent.graph import Graph, build_graph
from agent.memory import threads
from agent.memory.errors import DatabaseError, unsaved
from agent.memory.longterm import UserMemory, resolve_embeddings
from agent.memory.savers import Memory, open_memory, wrap_savers
from agent.memory.text import require_thread_id, require_valid_text
from agent.models.backend import Backend
from agent.nodes import Tool, thread_persona
from agent.personas import get_persona
from agent.post_reply import POST_REPLY_NODES
from agent.summary import with_memory
from agent.window import valid_messages

INTERRUPTED = "interrupted"  # response_metadata flag of a reply stopped early
CUT = "cut"  # response_metadata flag of a reply that hit the reply-token limit
REPLY_TOKENS = "reply_tokens"
CONTINUE_PROMPT = "Continue your last reply exactly where it stopped, without repeating it."
log = logging.getLogger(__name__)
# After-reply work still running, joined at interpreter exit (see finish_after_reply_work).
AFTER_REPLY: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def finish_after_reply_work() -> None:
    """Let after-reply work finish before the interpreter stops thread pools.

    A script may end right after `say()`. Python stops `concurrent.futures` (which LangGraph
    runs steps on) before it joins ordinary threads, so the work must finish first.
    """
    for thread in list(AFTER_REPLY):
        thread.join()


# Runs before concurrent.futures' own exit hook (these hooks run in reverse order).
threading._register_atexit(finish_after_reply_work)  # type: ignore[attr-defined]
BOOKKEEPING_FAILED = (
    "Thread %s: updating its record after the turn failed (the next turn heals it): %s"
)


def chunk_text(event: Any) -> str:
    """The text a `messages`-mode event adds to the reply, or '' for anything else."""
    chunk, metadata = event
    if metadata.get("langgraph_node") != "call_model" or not isinstance(chunk, AIMessageChunk):
        return ""
    return str(chunk.text)


def require_text(text: str) -> str:
    """Reject empty or whitespace-only messages, and text no backend can store, up front."""
    if not isinstance(text, str) or not text.strip():
        raise EmptyMessageError()
    return require_valid_text(text)


def interrupted_reply(text: str) -> AIMessage:
    """A partial reply, marked so readers (and the next turn) know it was cut off."""
    return AIMessage(content=text, response_metadata={INTERRUPTED: True})


def rollback_update(
    messages: Sequence[BaseMessage], message: HumanMessage
) -> dict[str, Any] | None:
    """The state update that removes a failed turn: its user message and any tool round after it."""
    ids = [m.id for m in messages]
    if message.id not in ids or is_final_reply(messages[-1]):
        return None  # not saved, or the reply was saved before the failure
    turn = messages[ids.index(message.id) :]
    return {"messages": [RemoveMessage(id=str(m.id)) for m in turn]}


def is_final_reply(message: BaseMessage) -> bool:
    """An assistant message that ends a turn (not a request to run tools)."""
    return isinstance(message, AIMessage) and not message.tool_calls


def settle_update(
    messages: Sequence[BaseMessage], message: HumanMessage, partial: str
) -> dict[str, Any] | None:
    """After an early stop: save what the user saw as an interrupted reply, or roll back."""
    present = any(m.id == message.id for m in messages)
    if present and messages and is_final_reply(messages[-1]):
        return None  # the reply was saved before the stop
    if not partial:
        return rollback_update(messages, message)
    return {
        "messages": [interrupted_reply(partial)]
        if present
        else [message, interrupted_reply(partial)]
    }


def new_id() -> str:
    """A fresh thread id."""
    return str(uuid.uuid4())


class ReplyStopped(BaseException):
    """Raised to end a reply nobody wants any more (see Chatbot.stop).

    A BaseException, so neither LangChain's callback manager (which logs every Exception a
    handler raises) nor `except Exception` handlers on the way mistake it for a failure.
    """


class StopSwitch(BaseCallbackHandler):
    """Ends the model call once pressed, so a stopped reply stops at once, sync or async.

    Sync runs: the model's next token raises ReplyStopped (LangGraph's sync executor would
    otherwise wait for the running node to finish the whole reply). Async runs: pressing it
    cancels the task awaiting the model, even between tokens (LangGraph then ends the run with
    a cancelled node). Runs inline so the model-start callback sees that task.
    """

    raise_error = True
    run_inline = True

    def __init__(self) -> None:
        self.pressed = threading.Event()
        self._lock = threading.Lock()
        self._task: asyncio.Task[Any] | None = None

    def press(self) -> None:
        """Stop the reply (from any thread, task or signal handler)."""
        self.pressed.set()
        self._cancel_task()

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        """Remember the task that awaits the model (async runs), for `press`."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop: a sync run, stopped token by token
            return
        with self._lock:
            self._task = task
        if self.pressed.is_set():
            self._cancel_task()

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        """Abort a sync model's stream once stopped (async ones are cancelled instead)."""
        if self.pressed.is_set() and self._task is None:
            raise ReplyStopped()

    def _cancel_task(self) -> None:
        """Cancel the model's task on its own event loop, if an async run has one."""
        with self._lock:
            task = self._task
        if task is not None and not task.done():
            task.get_loop().call_soon_threadsafe(task.cancel)


def raise_failed(error: Exception, turn: Turn) -> NoReturn:
    """Re-raise a failed turn's error; a database failure after streamed text says so."""
    if (typed := unsaved(error, turn.partial)) is error:
        raise error
    raise typed from error


def close_events(events: Iterator[Any]) -> None:
    """End a graph run now (`graph.stream` returns a generator, typed as an iterator)."""
    close = getattr(events, "close", None)
    if close is not None:
        close()


async def aclose_events(events: AsyncIterator[Any]) -> None:
    """Async `close_events`."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


@dataclass
class Turn:
    """One turn in progress: the user's message, what was streamed so far, its stop switch."""

    message: HumanMessage
    switch: StopSwitch = field(default_factory=lambda: StopSwitch())
    received: list[str] = field(default_factory=list)

    @property
    def input(self) -> dict[str, Any]:
        """The graph input that adds this turn's message."""
        return {"messages": [self.message]}

    @property
    def partial(self) -> str:
        """The reply text the consumer has received."""
        return "".join(self.received)

    def take(self, event: Any) -> str:
        """Record and return the reply text a `messages` event adds ('' for other events)."""
        piece = chunk_text(event)
        if piece:
            self.received.append(piece)
        return piece


@dataclass(frozen=True)
class TurnReport:
    """What a finished turn did besides answering (see `Chatbot.last_turn`).

    Attributes:
        evicted: Exchanges that moved out of the model's window during this turn (they stay in
            the transcript; the CLI tells the user).
        archived: Messages outside the window in all, for this thread.
        interrupted: The reply was stopped early (stop(), Ctrl-C, closing the stream).
        cut: The reply hit the reply-token limit (it may end mid-sentence).
        reply_tokens: Tokens the reply used, when the backend says.
    """

    evicted: int
    archived: int
    interrupted: bool
    cut: bool
    reply_tokens: int | None


def turn_report(values: Mapping[str, Any], message: HumanMessage) -> TurnReport | None:
    """The report of the turn that `message` started, or None if it left no reply."""
    messages: Sequence[BaseMessage] = values.get("messages", [])
    ids = [m.id for m in messages]
    if message.id not in ids or not is_final_reply(messages[-1]):
        return None
    reply = messages[-1]
    meta = reply.response_metadata
    usage = getattr(reply, "usage_metadata", None) or {}
    tokens = meta.get(REPLY_TOKENS, usage.get("output_tokens"))
    return TurnReport(
        evicted=int(values.get("evicted", 0)),
        archived=int(values.get("archived", 0)),
        interrupted=bool(meta.get(INTERRUPTED)),
        cut=bool(meta.get(CUT)),
        reply_tokens=int(tokens) if tokens is not None else None,
    )


class Chatbot:
    """One conversation thread: `say`/`stream` a message, read `history()`.

    Two Chatbots with the same thread id and memory continue one conversation; different
    thread ids never see each other's messages. Memory is `memory=` if given, else the
    `checkpointer=`/`store=` given, else `open_memory()` (AGENT_DB_URL, by default a SQLite file
    in the data directory), which the Chatbot then owns and `close()`s.
    """

    def __init__(
        self,
        persona: str | None = None,
        thread_id: str | None = None,
        *,
        persona_vars: Mapping[str, Any] | None = None,
        chat_model: BaseChatModel | None = None,
        backend: Backend | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        memory: Memory | None = None,
        tools: Sequence[Tool] = (),
        retriever: BaseRetriever | None = None,
        embeddings: Embeddings | None | Literal["bundled"] = "bundled",
        model: str | None = None,
        temperature: float | None = None,
        max_turns: int | None = None,
        max_tokens: int | None = None,
        low_water: float | None = None,
        max_reply_tokens: int | None = None,
        user_id: str | None = None,
        summary: bool | None = None,
        summary_tokens: int | None = None,
        long_term_memory: bool | None = None,
        memory_tokens: int | None = None,
        durability: Durability = "exit",
    ) -> None:
        """Open (or resume) a thread.

        Args:
            persona: Persona name; None keeps a resumed thread's persona (new threads:
                $AGENT_PERSONA, else "assistant").
            thread_id: The conversation to continue; None starts a new one (a UUID).
            persona_vars: Values for the persona template's `{variables}`, e.g.
                `{"user_name": "Ada"}`; names the persona does not declare are refused.
            chat_model: A LangChain chat model to use instead of the configured backend.
            backend: A model backend to use instead of the configured one (e.g. an
                `EmbeddedBackend` for a model served elsewhere); not with `chat_model`.
            checkpointer: A LangGraph checkpointer (with `store`) instead of `memory`.
            store: The LangGraph store for transcripts and thread records.
            memory: An open `agent.memory.Memory` (shared by many Chatbots); by default
                `open_memory()` (AGENT_DB_URL, else the SQLite file in the data directory),
                which this Chatbot then owns and closes.
            tools: Tools the model may call (LangChain tools or plain functions).
            retriever: A retriever whose passages are given to the model each turn.
            embeddings: What ranks the user's facts by meaning when recalling them ("bundled":
                the MiniLM of the `rag` extra if installed; None: by recency).
            model: Model name for the backend (`Context.model`).
            temperature: Sampling temperature (`Context.temperature`).
            max_turns: Exchanges in the window (`Context.max_turns`).
            max_tokens: Token budget of system prompt + window (`Context.max_tokens`).
            low_water: Fraction of the budget to evict down to (`Context.low_water`).
            max_reply_tokens: Most tokens one reply may have (`Context.max_reply_tokens`).
            user_id: Whose long-term memory this thread uses (`Context.user_id`; None: none).
            summary: Keep a running summary of what the window evicts (`Context.summary`).
            summary_tokens: Token budget of that summary (`Context.summary_tokens`).
            long_term_memory: Learn and recall facts about the user (`Context.long_term_memory`).
            memory_tokens: Token budget of the recalled facts (`Context.memory_tokens`).
            durability: When LangGraph writes checkpoints ("exit": once per turn).

        Raises:
            SettingError: A setting out of range (named).
            UnknownPersonaError: No persona of that name.
            UnknownVariableError: A persona variable the persona does not declare.
            MissingVariableError: The persona needs a variable that has no value.
            TypeError: If both `backend` and `chat_model` are given.

        Example:
            ```python
            bot = Chatbot("travel_planner", persona_vars={"language": "French"})
            print(bot.say("Hi, I'd like a week somewhere warm in March."))
            ```
        """
        settings = {
            "model": model,
            "temperature": temperature,
            "max_turns": max_turns,
            "max_tokens": max_tokens,
            "low_water": low_water,
            "max_reply_tokens": max_reply_tokens,
            "user_id": user_id,
            "summary": summary,
            "summary_tokens": summary_tokens,
            "long_term_memory": long_term_memory,
            "memory_tokens": memory_tokens,
        }
        self._settings: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
        Context(**self._settings)  # validate now, not at the first turn
        self.thread_id = require_thread_id(thread_id) if thread_id is not None else new_id()
        self._switch = StopSwitch()
        self.last_turn: TurnReport | None = None
        self._persona: str | None = None
        self._persona_vars: dict[str, Any] = {}
        self._close_memory: weakref.finalize[[], Chatbot] | None = None
        if memory is None and checkpointer is None and store is None:
            memory = open_memory()
            self._close_memory = weakref.finalize(self, memory.close)
        self.memory: Memory = memory if memory is not None else wrap_savers(checkpointer, store)
        self._embeddings = resolve_embeddings(embeddings)
        self.graph: Graph = build_graph(
            chat_model=chat_model,
            backend=backend,
            checkpointer=self.memory.checkpointer,
            store=self.memory.store,
            tools=tools,
            retriever=retriever,
            embeddings=self._embeddings,
        )
        self._durability: Durability = durability
        self._after: threading.Thread | None = None  # the last turn's after-reply work
        self._after_done: Future[None] | None = None  # set when that work has ended
        if persona is not None or persona_vars:
            self.switch_persona(persona or self.persona, persona_vars)

    # --- settings -------------------------------------------------------------------------

    @property
    def config(self) -> RunnableConfig:
        """The run config that selects this thread."""
        return {"configurable": {"thread_id": self.thread_id}}

    def context(self) -> Context:
        """The per-run settings for the next turn."""
        return Context(persona=self._persona, persona_vars=self._persona_vars, **self._settings)

    @property
    def persona(self) -> str:
        """The persona the next turn uses (the thread's own unless switched)."""
        return thread_persona(self._state().values, self.context())[0]

    def switch_persona(self, name: str, persona_vars: Mapping[str, Any] | None = None) -> None:
        """Use another persona (and variable values) from the next turn on, checked now.

        Args:
            name: The persona's name.
            persona_vars: Values for its variables; they add to (and override) the values the
                thread already has (values the new persona does not use are dropped).

        Raises:
            UnknownPersonaError: No persona of that name.
            UnknownVariableError: A variable the persona does not declare.
            MissingVariableError: A variable the persona needs still has no value.
        """
        persona = get_persona(name)
        given = dict(persona_vars or {})
        persona.check_variables(given)
        kept = {k: v for k, v in self._persona_vars.items() if k in persona.declared_variables}
        variables = {**kept, **given}
        persona.values({**self._state().values.get("persona_vars", {}), **variables})
        self._persona, self._persona_vars = name, variables

    # --- reading --------------------------------------------------------------------------

    def _state(self) -> StateSnapshot:
        self.wait()
        return self.graph.get_state(self.config)

    def history(self) -> list[BaseMessage]:
        """What the model sees next turn: the system message (summary, facts included), window."""
        values = self._state().values
        name, variables = thread_persona(values, self.context())
        window = valid_messages(values.get("messages", []), turn_pending=False)
        return with_memory(get_persona(name).format(window, variables), values)

    def summary(self) -> str:
        """The running summary of what the window evicted ('' until something was evicted)."""
        return str(self._state().values.get("summary") or "")

    @property
    def user_memory(self) -> UserMemory | None:
        """The user's long-term memory (list, put, forget, clear), or None without a user."""
        self.wait()  # facts from the last turn are being learned
        user_id = self.context().user_id
        return UserMemory(self.memory.store, user_id, self._embeddings) if user_id else None

    # --- talking --------------------------------------------------------------------------
    #
    # One set of rules for both APIs: `Turn` holds a turn's state, the sync and async drivers
    # below differ only in how they iterate the graph and wait; every decision (what to save
    # after a stop, what to roll back, what to report) is a sync method the async driver runs
    # in a worker thread. tests/unit/test_async_parity.py runs each behaviour on both.

    def say(self, text: str) -> str:
        """Send a message and return the whole reply.

        Raises:
            EmptyMessageError: For an empty or whitespace-only message (nothing is stored).
            ModelError: When the model fails (the turn is rolled back).
            ThreadBusyError: When another writer holds the thread longer than the lock timeout.
        """
        return "".join(self.stream(text))

    def stream(self, text: str) -> Iterator[str]:
        """Send a message and yield the reply's text as it is generated.

        The reply is saved when the stream ends. If the consumer stops early, or `stop()` is
        called, what was received is saved as an interrupted reply; if the model fails, the turn
        is rolled back. The turn holds the thread's lock (another writer waits, see
        Memory.thread_lock), then updates the thread's record; `last_turn` then reports what
        the turn evicted and how the reply ended.
        """
        turn = self._begin(text)
        self.wait()
        with self.memory.thread_lock(self.thread_id):
            record = threads.begin_turn(self.memory, self.thread_id, text, self._persona)
            try:
                yield from self._stream_turn(turn)
            finally:
                self._end_turn(turn, record)
        self._start_after_reply()

    def _stream_turn(self, turn: Turn) -> Iterator[str]:
        """Drive one turn through the graph, keeping the history valid however it ends."""
        # Held in a variable so unwinding does not close it before the switch is pressed.
        events = self.graph.stream(
            turn.input,
            self._run_config(turn),
            context=self.context(),
            stream_mode="messages",
            durability=self._durability,
            interrupt_before=POST_REPLY_NODES,  # they run after the stream, see _after_reply
        )
        try:
            for event in events:
                if piece := turn.take(event):
                    yield piece
        except ReplyStopped:  # stop() was called: keep what was said, marked interrupted
            self._settle_interrupted(turn)
        except Exception as error:
            self._rollback(turn)
            raise_failed(error, turn)
        except BaseException:  # the consumer stopped early (GeneratorExit) or Ctrl-C
            turn.switch.press()  # the model stops at its next token instead of finishing
            close_events(events)  # the graph's run ends before the partial reply is saved
            self._settle_interrupted(turn)
            raise

    def continue_reply(self) -> str:
        """Ask the model to go on with a reply that was cut short; return the continuation.

        Raises:
            NothingToContinueError: If the last reply was complete (neither cut by the
                reply-token limit nor stopped early).
        """
        return "".join(self.stream_continue())

    def stream_continue(self) -> Iterator[str]:
        """`continue_reply`, streamed: a turn asking for the rest of the cut reply."""
        self._require_continuable()
        yield from self.stream(CONTINUE_PROMPT)

    async def astream_continue(self) -> AsyncIterator[str]:
        """Async `stream_continue`."""
        await self._await_after_reply()
        await asyncio.to_thread(self._require_continuable)
        async for piece in self.astream(CONTINUE_PROMPT):
            yield piece

    def _require_continuable(self) -> None:
        """Refuse to continue unless the thread's last reply was cut or stopped early."""
        messages = self._state().values.get("messages", [])
        last = messages[-1] if messages else None
        meta = last.response_metadata if isinstance(last, AIMessage) else {}
        if not (meta.get(CUT) or meta.get(INTERRUPTED)):
            raise NothingToContinueError()

    def stop(self) -> None:
        """Stop the reply being generated (safe from a signal handler, thread or task).

        The stream ends at the model's next token; what was received is saved as interrupted.
        """
        self._switch.press()

    async def asay(self, text: str) -> str:
        """Async `say`, with the same rules."""
        return "".join([piece async for piece in self.astream(text)])

    async def astream(self, text: str) -> AsyncIterator[str]:
        """Async `stream`, with the same rules (stop(), early close, rollback, last_turn)."""
        turn = self._begin(text)
        await self._await_after_reply()
        async with self.memory.athread_lock(self.thread_id):
            record = await asyncio.to_thread(
                threads.begin_turn, self.memory, self.thread_id, text, self._persona
            )
            pieces = self._astream_turn(turn)
            try:
                async for piece in pieces:
                    yield piece
            finally:
                await pieces.aclose()  # settle an early stop now, inside the lock
                await asyncio.to_thread(self._end_turn, turn, record)
        await asyncio.to_thread(self._start_after_reply)

    async def _astream_turn(self, turn: Turn) -> AsyncGenerator[str, None]:
        """Async `_stream_turn`: the same outcomes; `stop()` cancels the model's task."""
        events = self.graph.astream(
            turn.input,
            self._run_config(turn),
            context=self.context(),
            stream_mode="messages",
            durability=self._durability,
            interrupt_before=POST_REPLY_NODES,
        )
        try:
            async for event in events:
                if turn.switch.pressed.is_set():
                    raise ReplyStopped()
                if piece := turn.take(event):
                    yield piece
        except ReplyStopped:
            await aclose_events(events)
            await asyncio.to_thread(self._settle_interrupted, turn)
        except Exception as error:
            if not turn.switch.pressed.is_set():
                await asyncio.to_thread(self._rollback, turn)
                raise_failed(error, turn)
            # stop() cancelled the model's task: LangGraph ends the run with that error
            await asyncio.to_thread(self._settle_interrupted, turn)
        except BaseException:
            turn.switch.press()
            await aclose_events(events)
            await asyncio.to_thread(self._settle_interrupted, turn)
            raise

    def _begin(self, text: str) -> Turn:
        """A new turn for `text` (rejected now if empty), wired to `stop()`."""
        turn = Turn(HumanMessage(content=require_text(text), id=new_id()))
        self._switch, self.last_turn = turn.switch, None
        return turn

    def _run_config(self, turn: Turn) -> RunnableConfig:
        """This thread's config plus the turn's stop switch (sync runs: see StopSwitch)."""
        return {**self.config, "callbacks": [turn.switch]}

    # --- after the reply: the summary and long-term memory, off the critical path ---------
    #
    # A turn's run stops before `compact`/`remember` (interrupt_before), so the reply is saved
    # and the stream ends as soon as the reply does. Their run then goes on in a background
    # thread holding the thread's lock; the next turn, and every read of the thread, waits for
    # it only if it is still running. If it never runs (the process died), the next turn's
    # `trim` evicts instead and its own `compact` folds what was evicted.

    def _start_after_reply(self) -> None:
        """Run the turn's pending after-reply steps in the background, if it has any."""
        snapshot = self.graph.get_state(self.config)
        if not set(snapshot.next) & set(POST_REPLY_NODES):
            return
        context, done = self.context(), Future[None]()
        self._after = threading.Thread(
            target=self._after_reply, args=(context, done), name="agent-after-reply", daemon=False
        )
        self._after_done = done
        AFTER_REPLY.add(self._after)
        self.memory.working.add(self._after)
        self._after.start()

    def _after_reply(self, context: Context, done: Future[None]) -> None:
        """Finish the interrupted run: fold evicted messages into the summary, learn facts."""
        try:
            with self.memory.thread_lock(self.thread_id):
                snapshot = self.graph.get_state(self.config)
                if set(snapshot.next) & set(POST_REPLY_NODES):  # another writer may have gone on
                    values = self.graph.invoke(
                        None, self.config, context=context, durability=self._durability
                    )
                    count = int(values.get("archived", 0)) + len(values.get("messages", []))
                    if self.memory.prune_due(count):  # this run wrote a checkpoint too
                        self.memory.prune(self.thread_id)
        except Exception:  # the turn is saved; the next turn's trim and compact catch up
            log.warning(
                "Thread %s: summarizing or learning after the reply failed.",
                self.thread_id,
                exc_info=True,
            )
        finally:
            done.set_result(None)

    def wait(self) -> None:
        """Wait until the last turn's after-reply work (summary, learning facts) is done.

        Every read of the thread and the next turn do this themselves; call it to time a
        turn end to end, or before handing the thread's memory to another process.
        """
        after, self._after = self._after, None
        if after is not None and after is not threading.current_thread():
            after.join()

    async def _await_after_reply(self) -> None:
        """Async `wait`, holding no worker thread meanwhile.

        Joining in the event loop's executor would take a worker for as long as the work runs;
        with every worker so taken, a turn that holds the lock that work waits for could not get
        one to finish and release it (a deadlock under load: SQLite lock files are shared by
        several threads).
        """
        after, done = self._after, self._after_done
        if after is None or done is None or after is threading.current_thread():
            return
        await asyncio.wrap_future(done)
        if self._after is after:
            self._after = None

    # --- keeping the history valid (sync; the async driver runs them in a worker thread) ---

    def _rollback(self, turn: Turn) -> None:
        """Remove a failed turn's user message so the thread is exactly as it was.

        If the database fails here too, that is logged: the turn's own error is the one to report.
        """
        try:
            self._apply(rollback_update(self._state().values.get("messages", []), turn.message))
        except DatabaseError:
            log.warning("Thread %s: rolling back the failed turn failed.", self.thread_id)

    def _settle_interrupted(self, turn: Turn) -> None:
        """After an early stop, save what the user saw as an interrupted reply, or roll back."""
        messages = self._state().values.get("messages", [])
        self._apply(settle_update(messages, turn.message, turn.partial))

    def _apply(self, update: dict[str, Any] | None) -> None:
        if update is not None:
            self.graph.update_state(self.config, update, as_node="call_model")

    # --- memory: bookkeeping, transcript, thread admin ---------------------------------------

    def _end_turn(self, turn: Turn, record: Mapping[str, Any]) -> None:
        """Report the turn, then update the thread's record and prune when due (it is saved)."""
        try:
            values = self._state().values
            self.last_turn = turn_report(values, turn.message)
            threads.end_turn(self.memory, self.thread_id, record, values)
        except DatabaseError as error:  # one line: the message says what failed and what to do
            log.warning(BOOKKEEPING_FAILED, self.thread_id, error)
        except Exception:  # report housekeeping trouble; failing the saved turn would mislead
            log.warning(
                "Thread %s: bookkeeping after the turn failed.", self.thread_id, exc_info=True
            )

    def transcript(self) -> list[BaseMessage]:
        """The whole conversation, in order and without duplicates: archived messages + window.

        Unlike `history()` there is no system prompt and nothing is left out: the model sees only
        the window, the transcript keeps everything (an interrupted reply keeps its
        `response_metadata["interrupted"]` flag).
        """
        values = self._state().values
        archived = self.memory.archive.read(self.thread_id, int(values.get("archived", 0)))
        return threads.merge_transcript(archived, values.get("messages", []))

    async def atranscript(self) -> list[BaseMessage]:
        """Async `transcript` (the same reads, in a worker thread)."""
        await self._await_after_reply()
        return await asyncio.to_thread(self.transcript)

    def export(self, format: Literal["json", "markdown"] = "json") -> str:
        """This thread's whole transcript and summary as JSON or Markdown (agent.memory.threads)."""
        self.wait()
        return threads.export_thread(self.memory, self.thread_id, format)

    def delete(self) -> bool:
        """Delete this thread: checkpoints, transcript and listing; False if nothing was saved."""
        self.wait()
        return threads.delete_thread(self.memory, self.thread_id)

    def close(self) -> None:
        """Finish the after-reply work, then close the memory this Chatbot opened itself."""
        self.wait()
        if self._close_memory is not None:
            self._close_memory()

    def __enter__(self) -> Chatbot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Chatbot:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._await_after_reply()
        await asyncio.to_thread(self.close)
