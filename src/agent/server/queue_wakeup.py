"""Start `langgraph dev` runs when they are created, not at the in-memory queue's next poll.

`langgraph_runtime_inmem`'s queue loop asks `ops.Runs.next(wait=True)` for work when idle, and
`next` reads the clock, sleeps 0.5 s, then takes only runs created *before* that clock reading:
every run waits 0.5-1.0 s before it starts, and nothing configures it. This module changes that
at run time, and nothing else: while installed (the web app's lifespan does it), `Runs.put`
signals an event once it has stored a run, and the idle wait becomes "until a run is created,
at most 0.5 s", after which the upstream `next` (with `wait=False`) selects and locks runs as
before. An idle server still polls every 0.5 s; other runtimes are left alone.

`check_upstream()` verifies the upstream code still has the shape this relies on; a unit test
calls it, so an upgrade that changes it fails loudly instead of silently losing the speed-up.
If it fails at server start, the server logs why and runs unpatched (slower, still correct).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # the upstream idle poll, kept as the fallback when no run is signalled
RUNTIME = "langgraph_runtime_inmem"


class UpstreamChangedError(RuntimeError):
    """Raised when langgraph_runtime_inmem no longer looks like what this module patches."""


def _source(obj: Any) -> str:
    """An object's source code, or '' when it cannot be read."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def check_upstream(ops: Any, queue: Any) -> None:
    """Raise UpstreamChangedError unless the queue still polls `Runs.next` as described above.

    Args:
        ops: The `langgraph_runtime_inmem.ops` module.
        queue: The `langgraph_runtime_inmem.queue` module.

    Raises:
        UpstreamChangedError: Naming the expectation that no longer holds.
    """
    runs = getattr(ops, "Runs", None)
    expectations: list[tuple[bool, str]] = [
        (runs is not None, "ops.Runs exists"),
        (
            inspect.isasyncgenfunction(getattr(runs, "next", None)),
            "Runs.next is an async generator",
        ),
        (inspect.iscoroutinefunction(getattr(runs, "put", None)), "Runs.put is a coroutine"),
    ]
    next_source, queue_source = _source(getattr(runs, "next", None)), _source(queue.queue)
    expectations += [
        ("async def next(wait: bool, limit: int = 1)" in next_source, "Runs.next(wait, limit)"),
        ("await asyncio.sleep(0.5)" in next_source, "Runs.next sleeps 0.5 s when waiting"),
        ('run.get("created_at", now) < now' in next_source, "Runs.next takes runs before now"),
        ("ops.Runs.next(" in queue_source, "the queue loop calls ops.Runs.next"),
        ("wait=wait" in queue_source, "the queue loop passes wait="),
    ]
    broken = [what for ok, what in expectations if not ok]
    if broken:
        raise UpstreamChangedError(
            f"{RUNTIME} changed; agent.server.queue_wakeup relies on: {'; '.join(broken)}. "
            "Re-read its Runs.next/queue() and update or remove the wake-up."
        )


class QueueWakeup:
    """The patch itself: a wake-up event set by `Runs.put`, awaited by an idle `Runs.next`."""

    def __init__(self, runs: Any, poll_seconds: float = POLL_SECONDS) -> None:
        self.runs = runs
        self.poll_seconds = poll_seconds
        self.original_next: Callable[..., AsyncIterator[Any]] = runs.next
        self.original_put: Callable[..., Any] = runs.put
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None
        self.lock = threading.Lock()
        self.created = 0  # runs created so far (by any thread)
        self.seen = 0  # runs created when the queue last looked

    def signal(self) -> None:
        """Count a new run and wake the waiting queue (from any thread or event loop)."""
        with self.lock:
            self.created += 1
        loop, event = self.loop, self.event
        if loop is None or event is None or loop.is_closed():
            return  # the queue has not waited yet; it sees the count when it does
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def wait_for_run(self) -> None:
        """Return once a run was created (or at the latest after the poll interval)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop or self.event is None:
            self.loop, self.event = loop, asyncio.Event()
        with self.lock:
            missed, self.seen = self.created != self.seen, self.created
        if not missed:  # nothing was created since the last look: wait for a signal
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), self.poll_seconds)
        self.event.clear()
        with self.lock:
            self.seen = self.created

    async def next(self, wait: bool, limit: int = 1) -> AsyncIterator[Any]:
        """Upstream `Runs.next`, with the fixed sleep replaced by `wait_for_run`."""
        if wait:
            await self.wait_for_run()
        async for item in self.original_next(wait=False, limit=limit):
            yield item

    async def put(self, *args: Any, **kwargs: Any) -> Any:
        """Upstream `Runs.put`; once the run is stored, wake the queue."""
        created = await self.original_put(*args, **kwargs)
        self.signal()
        return created

    def install(self) -> None:
        """Replace `Runs.next` and `Runs.put` (the queue looks them up at every call)."""
        self.runs.next = staticmethod(self.next)
        self.runs.put = staticmethod(self.put)

    def uninstall(self) -> None:
        """Put the upstream functions back."""
        self.runs.next = staticmethod(self.original_next)
        self.runs.put = staticmethod(self.original_put)


def inmem_runtime() -> tuple[Any, Any] | None:
    """The in-memory runtime's ops and queue modules, when this server runs on it."""
    if os.environ.get("LANGGRAPH_RUNTIME_EDITION", "inmem") != "inmem":
        return None
    try:
        ops = importlib.import_module(f"{RUNTIME}.ops")
        queue = importlib.import_module(f"{RUNTIME}.queue")
    except ImportError:
        return None
    return ops, queue


@contextlib.contextmanager
def installed(poll_seconds: float = POLL_SECONDS) -> Iterator[QueueWakeup | None]:
    """Install the wake-up for the server's lifetime, if it runs the in-memory runtime.

    Args:
        poll_seconds: Longest idle wait between polls (the upstream value by default).

    Yields:
        The installed patch, or None (another runtime, or upstream changed: logged).
    """
    runtime = inmem_runtime()
    if runtime is None:
        yield None
        return
    ops, queue = runtime
    try:
        check_upstream(ops, queue)
    except UpstreamChangedError as error:
        log.warning("Run queue wake-up not installed: %s", error)
        yield None
        return
    wakeup = QueueWakeup(ops.Runs, poll_seconds)
    wakeup.install()
    try:
        yield wakeup
    finally:
        wakeup.uninstall()
