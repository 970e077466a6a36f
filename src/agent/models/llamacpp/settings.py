"""How the in-process llama.cpp server is sized: from the operator's configuration, never a run.

Each of `slots` parallel conversations gets `context_per_slot` tokens: AGENT_CONTEXT_SIZE, else
2048, never more than the model was trained for and never less than 512. A run's `max_tokens`
or `max_reply_tokens` only divides a slot between window and reply (see the embedded backend);
it cannot resize the server every other user shares.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import EmbeddedModelError, SettingError
from agent.models.llamacpp.gguf import GGUFFormatError, context_length
from agent.models.llamacpp.paths import default_model_path
from agent.settings import read

DEFAULT_SLOTS = 4
DEFAULT_CONTEXT_PER_SLOT = 2048
MIN_CONTEXT_PER_SLOT = 512


def positive_setting(name: str) -> int | None:
    """A positive integer variable (AGENT_SLOTS, AGENT_CONTEXT_SIZE), None when unset.

    Raises:
        SettingError: Naming the variable, for anything but a positive integer.
    """
    value: int | None = read(name)
    if value is not None and value < 1:
        raise SettingError(name, value, "must be a positive integer")
    return value


def default_threads(cpus: int | None = None) -> int:
    """Half the CPUs, at least one: llama.cpp's threads wait for each other at every token.

    With all of a machine's cores, one thread pre-empted by any other process stalls the rest;
    on a busy 2-core machine 1 thread generated ~30 tokens/s where 2 threads managed 2-8.
    """
    return max(1, (cpus if cpus is not None else os.cpu_count() or 2) // 2)


def context_per_slot(configured: int | None, trained: int | None) -> int:
    """Tokens per slot: as configured, else 2048; capped at the trained size, floored at 512.

    More than the model was trained for would only produce garbage; less than 512 leaves no room
    for a system prompt, a short exchange and a reply.
    """
    wanted = configured if configured is not None else DEFAULT_CONTEXT_PER_SLOT
    if trained:
        wanted = min(wanted, trained)
    return max(wanted, MIN_CONTEXT_PER_SLOT)


@dataclass(frozen=True)
class ServerSettings:
    """How to run the embedded server; each of the `slots` gets `context_per_slot` tokens."""

    model_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    slots: int = DEFAULT_SLOTS
    context_per_slot: int = DEFAULT_CONTEXT_PER_SLOT
    api_key: str = ""
    threads: int = field(default_factory=default_threads)

    @classmethod
    def from_env(cls, host: str = "127.0.0.1", port: int = 0) -> ServerSettings:
        """Settings from AGENT_MODEL_PATH, AGENT_SLOTS, AGENT_CONTEXT_SIZE, AGENT_THREADS.

        Raises:
            EmbeddedModelError: For a missing or unreadable model file.
            SettingError: For a bad AGENT_SLOTS, AGENT_CONTEXT_SIZE or AGENT_THREADS.
        """
        path = default_model_path()
        try:
            trained = context_length(path)
        except (GGUFFormatError, OSError) as error:
            raise EmbeddedModelError(
                f"{path} is not a usable GGUF model file ({error}). Point AGENT_MODEL_PATH at a "
                "GGUF model, or unset it to use the bundled SmolLM2."
            ) from error
        return cls(
            model_path=path,
            host=host,
            port=port,
            slots=positive_setting("AGENT_SLOTS") or DEFAULT_SLOTS,
            context_per_slot=context_per_slot(positive_setting("AGENT_CONTEXT_SIZE"), trained),
            api_key=secrets.token_urlsafe(24),
            threads=positive_setting("AGENT_THREADS") or default_threads(),
        )
