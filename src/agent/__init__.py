"""A chatbot with memory on LangGraph: personas, streaming, a sliding window, offline by default."""

from agent.chatbot import Chatbot
from agent.context import Context
from agent.graph import build_graph

__all__ = ["Chatbot", "Context", "build_graph"]
__version__ = "0.1.0"
