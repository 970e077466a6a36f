"""How the embedded backend's repetition defaults were chosen: loops, length and code per setting.

Three single-turn prompts that made SmolLM2 loop or write code (the cooking recipe, the travel
plan, the tutor's dictionary loop), 4 seeds each, 512-token cap, temperature 0.7, one slot, one
thread. Per setting: replies that loop (bench.reply_loops.loops), replies cut at the cap, mean
length, and how many of the tutor's answers still use `.items()` (a repeat penalty that is too
strong breaks code, which reuses tokens on purpose).

Usage: python -m bench.loop_settings   (about 3 minutes per setting on a busy 2-core machine)
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.messages import HumanMessage

from agent.models.llamacpp.paths import default_model_path
from agent.models.llamacpp.sampling import Repetition
from agent.models.llamacpp.server import EmbeddedServer
from agent.models.llamacpp.settings import ServerSettings
from agent.personas import get_persona
from bench.reply_loops import Seeded, loops

PROMPTS = [
    ("cooking_assistant", "Give me a simple recipe for chicken curry."),
    (
        "travel_planner",
        "I have about 2,000 euros and one week in May. I love food markets, hiking and old "
        "towns. So where should I go, and what should I do each day?",
    ),
    ("tutor", "How do I loop over a dictionary's keys and values?"),
]
SETTINGS: dict[str, dict[str, Any]] = {
    "off (the seed's)": {"repeat_penalty": 1.0, "dry_multiplier": 0.0},
    "DRY 0.8": {"repeat_penalty": 1.0, "dry_multiplier": 0.8},
    "DRY 1.2": {"repeat_penalty": 1.0, "dry_multiplier": 1.2},
    "DRY 1.5": {"repeat_penalty": 1.0, "dry_multiplier": 1.5},
    "repeat 1.1/256 + DRY 0.8": {
        "repeat_penalty": 1.1,
        "repeat_last_n": 256,
        "dry_multiplier": 0.8,
    },
    "repeat 1.05/256 + DRY 0.8 allowed 3": {
        "repeat_penalty": 1.05,
        "repeat_last_n": 256,
        "dry_multiplier": 0.8,
        "dry_allowed_length": 3,
    },
    "repeat 1.05/64 + DRY 1.2": {"repeat_penalty": 1.05},
    "repeat 1.03/64 + DRY 1.2 (default)": {},
}
SEEDS = (1, 2, 3, 4)


def chat_payload(persona: str, text: str) -> list[dict[str, str]]:
    """The persona's system prompt and the user message, as chat-completions messages."""
    roles = {"system": "system", "human": "user"}
    messages = get_persona(persona).format([HumanMessage(text)], {})
    return [{"role": roles[m.type], "content": str(m.content)} for m in messages]


def measure(server: EmbeddedServer, controls: Repetition) -> str:
    """One table line for one setting."""
    looped = cut = tokens = code = 0
    for persona, text in PROMPTS:
        for seed in SEEDS:
            fields = {**controls.request_fields(), "seed": seed}
            body = {"model": "smollm2", "messages": chat_payload(persona, text), **fields}
            body.update(max_tokens=512, temperature=0.7)
            reply = httpx.post(
                f"{server.base_url}/chat/completions",
                json=body,
                headers={"Authorization": "Bearer bench"},
                timeout=900,
            ).json()
            choice, text_out = reply["choices"][0], reply["choices"][0]["message"]["content"]
            looped += loops(text_out)
            cut += choice["finish_reason"] == "length"
            tokens += reply["usage"]["completion_tokens"]
            code += persona == "tutor" and ".items()" in text_out
    total = len(PROMPTS) * len(SEEDS)
    return f"{looped}/{total} | {cut}/{total} | {tokens / total:.0f} | {code}/{len(SEEDS)}"


def main() -> None:
    """Print the table docs/models.md quotes."""
    settings = ServerSettings(model_path=default_model_path(), slots=1, threads=1, api_key="bench")
    server = EmbeddedServer(settings)
    try:
        print(
            "| setting | replies that loop | cut at 512 | mean tokens | tutor code uses .items() |"
        )
        print("|---|---|---|---|---|")
        for name, fields in SETTINGS.items():
            controls = Seeded(**{**Repetition().request_fields(), **fields})
            print(f"| {name} | {measure(server, controls)} |", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
