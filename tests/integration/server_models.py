"""Fake models shared by the server's test graphs.

`langgraph dev` loads each graph of fake_server_graph.py as its own copy of that file; models
defined here are imported normally, so every copy (and so every graph) sees the same object.
"""

from __future__ import annotations

from tests.fakes import FakeChat

# Streams two chunks, then waits (for a test: forever) for a resume that never comes: only
# cancelling the run's model call ends it.
paused_model = FakeChat(reply=lambda _: "word " * 200, chunk_size=5, pause_after=2)
