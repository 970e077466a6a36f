"""A chatbot with memory on LangGraph: personas, streaming, a sliding window, offline by default.

The public names load on first use, so `agent --version` and `agent -h` start in a blink
instead of paying for LangChain's imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.chatbot import Chatbot
    from agent.context import Context
    from agent.graph import build_graph

__all__ = ["Chatbot", "Context", "build_graph"]
__version__ = "0.1.0"

_HOMES = {"Chatbot": "agent.chatbot", "Context": "agent.context", "build_graph": "agent.graph"}


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'agent' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
