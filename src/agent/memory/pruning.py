"""Keep only a thread's newest checkpoints, so storage stays bounded however long it runs.

The transcript (not old checkpoints) holds the conversation's history; old checkpoints only
serve time travel, so each thread keeps its last `keep` ones. Run under the thread's turn lock:
a checkpoint write of the same thread must not run meanwhile.
"""

from __future__ import annotations

import sys
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

SQLITE_PRUNE = (
    """
    DELETE FROM checkpoints
    WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) IN (
        SELECT checkpoint_ns, checkpoint_id FROM (
            SELECT checkpoint_ns, checkpoint_id, row_number() OVER (
                PARTITION BY checkpoint_ns ORDER BY checkpoint_id DESC
            ) AS newest
            FROM checkpoints WHERE thread_id = ?
        ) WHERE newest > ?
    )
    """,
    """
    DELETE FROM writes
    WHERE thread_id = ? AND NOT EXISTS (
        SELECT 1 FROM checkpoints c
        WHERE c.thread_id = writes.thread_id AND c.checkpoint_ns = writes.checkpoint_ns
        AND c.checkpoint_id = writes.checkpoint_id
    )
    """,
)


def prune_sqlite(saver: SqliteSaver, thread_id: str, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints of a thread, and their writes, atomically."""
    with saver.cursor() as cur:  # one transaction, committed when the block ends
        cur.execute(SQLITE_PRUNE[0], (thread_id, thread_id, keep))
        cur.execute(SQLITE_PRUNE[1], (thread_id,))


def prune_saver(saver: BaseCheckpointSaver[Any], thread_id: str, keep: int) -> bool:
    """Prune a saver this module knows how to prune; False (nothing done) for any other saver."""
    if isinstance(saver, SqliteSaver):
        prune_sqlite(saver, thread_id, keep)
        return True
    postgres = sys.modules.get("langgraph.checkpoint.postgres")  # loaded iff PostgreSQL is used
    if postgres is not None and isinstance(saver, postgres.PostgresSaver):
        from agent.memory.postgres import prune_postgres

        prune_postgres(saver.conn, thread_id, keep)
        return True
    return False
