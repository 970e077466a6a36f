"""A tool-using assistant: a calculator, a clock and a unit converter as LangChain tools.

    python examples/tool_assistant.py "What is 17.5% of 2,340?"

The tools run locally; the model decides when to call them, so it must be able to call tools:
OpenAI (OPENAI_API_KEY), a provider by name (AGENT_MODEL=anthropic:..., ollama:...) or a local
OpenAI-compatible server whose model does (OPENAI_BASE_URL). The embedded SmolLM2-135M cannot:
on it the example stops with the project's ToolsUnsupportedError, which says which models can
(see docs/extending.md).

`graph` is what `langgraph dev` serves (langgraph.json: "tool_assistant").
"""

from __future__ import annotations

import ast
import math
import operator
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot
from agent.errors import AgentError
from agent.graph import builder

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 1000


def _evaluate(node: ast.AST) -> float:
    """Evaluate an arithmetic syntax tree; anything else (names, calls, attributes) is refused."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"Exponent {right} is too large (at most {MAX_EXPONENT}).")
        return _BINARY[type(node.op)](left, right)  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in _FUNCTIONS and not node.keywords:
            return _FUNCTIONS[node.func.id](*(_evaluate(arg) for arg in node.args))
    raise ValueError(f"Not allowed in a calculation: {ast.unparse(node)!r}.")


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. '0.175 * 2340' or 'sqrt(2) ** 2'.

    Supports + - * / // % **, parentheses, pi, e, sqrt, log, exp, sin, cos, tan, abs, round.
    """
    tree = ast.parse(expression.replace(",", "").replace("^", "**"), mode="eval")
    result = _evaluate(tree)
    return f"{result:.10g}" if isinstance(result, float) else str(result)


@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone such as 'Europe/Paris' or 'UTC'."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"Unknown time zone {timezone!r}; use an IANA name.") from error
    return datetime.now(zone).strftime("%A %Y-%m-%d %H:%M:%S %Z")


# Factors to a base unit per dimension: metres, kilograms, litres.
_UNITS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.001),
    "cm": ("length", 0.01),
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "yd": ("length", 0.9144),
    "mi": ("length", 1609.344),
    "g": ("mass", 0.001),
    "kg": ("mass", 1.0),
    "oz": ("mass", 0.028349523125),
    "lb": ("mass", 0.45359237),
    "ml": ("volume", 0.001),
    "l": ("volume", 1.0),
    "cup": ("volume", 0.2365882365),
    "gal": ("volume", 3.785411784),
}
_TEMPERATURES = {"c", "f", "k"}


def _to_celsius(value: float, unit: str) -> float:
    return {"c": value, "f": (value - 32) * 5 / 9, "k": value - 273.15}[unit]


def _from_celsius(value: float, unit: str) -> float:
    return {"c": value, "f": value * 9 / 5 + 32, "k": value + 273.15}[unit]


@tool
def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a quantity between units of length, mass, volume or temperature.

    Units: mm cm m km in ft yd mi | g kg oz lb | ml l cup gal | C F K (temperatures).
    """
    source, target = from_unit.strip().lower(), to_unit.strip().lower()
    if source in _TEMPERATURES and target in _TEMPERATURES:
        result = _from_celsius(_to_celsius(value, source), target)
    elif source in _UNITS and target in _UNITS and _UNITS[source][0] == _UNITS[target][0]:
        result = value * _UNITS[source][1] / _UNITS[target][1]
    else:
        known = " ".join([*_UNITS, "C", "F", "K"])
        raise ValueError(f"Cannot convert {from_unit!r} to {to_unit!r}. Known units: {known}.")
    return f"{value:g} {from_unit} = {result:.6g} {to_unit}"


TOOLS = [calculate, current_time, convert_units]

graph = builder(tools=TOOLS).compile()


def tool_report(bot: Chatbot) -> list[str]:
    """One line per tool call in the window, with its result, for the reader to check."""
    history = bot.history()
    results = {m.tool_call_id: m.text for m in history if isinstance(m, ToolMessage)}
    calls = [call for m in history if isinstance(m, AIMessage) for call in m.tool_calls]
    return [f"  {c['name']}({c['args']}) -> {results.get(c['id'] or '', '?')}" for c in calls]


def main(argv: list[str]) -> int:
    """Ask one question and show the answer and the tool calls behind it."""
    question = " ".join(argv) or "What is 17.5% of 2,340, and how many km is 26.2 miles?"
    bot = Chatbot(tools=TOOLS, checkpointer=InMemorySaver(), temperature=0.0)
    try:
        for piece in bot.stream(question):
            print(piece, end="", flush=True)
    except AgentError as error:  # e.g. the embedded model, which cannot call tools
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print()
    calls = tool_report(bot)
    print("Tool calls:" if calls else "Tool calls: none (the model answered without them)")
    print("\n".join(calls))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
