"""Memory: checkpointer and store selection, the transcript archive, and thread administration."""

from agent.memory.archive import Archive, StoreArchive

__all__ = ["Archive", "StoreArchive"]
