"""The suite passes when started in the background (`make test &`, nohup), where SIGINT is ignored.

A non-interactive shell starts background jobs with SIGINT ignored, and every child inherits
that. The tests that press Ctrl-C must set the disposition a terminal gives, not assume it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CTRL_C_TESTS = [
    "tests/unit/test_cli.py::test_ctrl_c_during_a_chat_reply_keeps_the_partial_reply_and_the_chat",
    "tests/unit/test_cli.py::test_ctrl_c_during_ask_saves_the_partial_reply_and_exits_130",
    "tests/unit/test_cli.py::test_a_second_ctrl_c_raises_keyboard_interrupt",
    "tests/integration/test_embedded_serve.py::"
    "test_clients_stream_through_the_served_model_until_ctrl_c",
]


# What a non-interactive shell does to a background job: ignore SIGINT, then exec the command.
IGNORING_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
]


def test_the_ctrl_c_tests_pass_with_sigint_ignored_as_in_a_background_job() -> None:
    probe = subprocess.run(
        [*IGNORING_SIGINT, "-c", "import signal as s; print(s.getsignal(s.SIGINT) is s.SIG_IGN)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"  # the setup reproduces `make test &`
    result = subprocess.run(
        [*IGNORING_SIGINT, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CTRL_C_TESTS],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{len(CTRL_C_TESTS)} passed" in result.stdout
