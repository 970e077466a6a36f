"""The example tools (examples/tool_assistant.py): correct answers, clear errors, safe parsing."""

from __future__ import annotations

import re

import pytest

from examples.tool_assistant import TOOLS, calculate, convert_units, current_time, graph


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.175 * 2,340", "409.5"),
        ("2 ** 10", "1024"),
        ("2^10", "1024"),
        ("(1 + 2) * -3", "-9"),
        ("sqrt(16) + round(2.6)", "7"),
        ("7 // 2 + 7 % 2", "4"),
    ],
)
def test_calculate(expression: str, expected: str) -> None:
    assert calculate.invoke({"expression": expression}) == expected


@pytest.mark.parametrize(
    "expression", ["__import__('os')", "open('x')", "(1).__class__", "9 ** 9999", "x + 1"]
)
def test_calculate_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ValueError):
        calculate.invoke({"expression": expression})


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (26.2, "mi", "km", "42.1648"),
        (100, "C", "F", "212"),
        (0, "K", "C", "-273.15"),
        (1, "lb", "g", "453.592"),
        (2, "cup", "ml", "473.176"),
    ],
)
def test_convert_units(value: float, source: str, target: str, expected: str) -> None:
    result = convert_units.invoke({"value": value, "from_unit": source, "to_unit": target})
    assert result.endswith(f"= {expected} {target}")


def test_convert_units_names_the_known_units_when_it_cannot_convert() -> None:
    with pytest.raises(ValueError, match="Known units: .*km"):
        convert_units.invoke({"value": 1, "from_unit": "km", "to_unit": "kg"})


def test_current_time_in_a_zone_and_a_clear_error_for_a_bad_one() -> None:
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$", current_time.invoke({}))
    with pytest.raises(ValueError, match="Unknown time zone"):
        current_time.invoke({"timezone": "Mars/Olympus"})


def test_the_served_graph_has_the_tool_loop_and_no_checkpointer() -> None:
    assert {"trim", "call_model", "tools"} <= set(graph.get_graph().nodes)
    assert graph.checkpointer is None
    assert [t.name for t in TOOLS] == ["calculate", "current_time", "convert_units"]
