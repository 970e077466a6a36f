"""The runaway-reply detector behind `make bench`'s loop rate (bench/reply_loops.py)."""

from __future__ import annotations

from bench.reply_loops import loops

LOOPING = "I think you could visit a local market in a small town in Spain. " * 3
CODE = "```\nKey: a, Value: 1\nKey: b, Value: 2\n```\n" * 3


def test_a_sentence_said_three_times_is_a_loop() -> None:
    assert loops(LOOPING)
    assert not loops("I think you could visit a local market in a small town in Spain. " * 2)


def test_ordinary_prose_and_repeated_code_output_are_not() -> None:
    assert not loops("Python dictionaries map keys to values. Add a key with d['k'] = v.")
    assert not loops("Here is the output, three times:\n" + CODE)
    assert loops(CODE + LOOPING)
