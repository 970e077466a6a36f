"""llama.cpp's repetition controls, sent with every request of the embedded backend.

Small models loop: SmolLM2 repeated "I think you could visit a local market in ..." until the
context was full. llama.cpp's server takes these fields per request on /v1/chat/completions
(checked on the real server: they show up in GET /slots under the slot's `params`):

- `repeat_penalty` over the last `repeat_last_n` tokens: makes any recently used token less
  likely (1.0 = off);
- DRY ("don't repeat yourself"): penalises extending a sequence that already occurred, growing
  as `dry_multiplier * dry_base ** (length - dry_allowed_length)`, over the last
  `dry_penalty_last_n` tokens (0 = off for the server; the multiplier 0 switches DRY off).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Repetition:
    """Per-request repetition controls for a llama.cpp server, with measured defaults.

    See docs/models.md "Loops"; `make bench` (row 7) measures them on the tutorial's
    conversations.
    """

    repeat_penalty: float = 1.03  # mild: 1.1 broke SmolLM2's Python code (it reuses tokens)
    repeat_last_n: int = 64
    dry_multiplier: float = 1.2
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 1024

    def request_fields(self) -> dict[str, Any]:
        """The JSON fields llama.cpp reads from a chat-completions request body."""
        return asdict(self)


OFF = Repetition(repeat_penalty=1.0, dry_multiplier=0.0)
