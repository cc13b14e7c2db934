"""The band-expression language: parse, whitelist-check and type a condition on a scene's bands.

Pure :mod:`ast` and :mod:`re` (plus numpy's functions in the tables the evaluator uses), so a pipeline
with ``expression:`` masks validates without loading rasterio or numba. The language, its safety
rules and its evaluation are described in :mod:`geomask.masks.expression`, which evaluates a checked
tree on the scene's pixels.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from geomask.errors import ConfigError

__all__ = ["FUNCTIONS", "MAX_LENGTH", "check_expression"]

MAX_LENGTH = 4096
"""Longest expression accepted, in characters."""

Kind = Literal["number", "condition"]

FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "abs": (np.abs, 1),
    "sqrt": (np.sqrt, 1),
    "log": (np.log, 1),
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
}
"""The functions an expression may call: name -> (numpy function, number of arguments)."""

_ARITHMETIC: dict[type[ast.operator], Callable[..., Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
_LOGIC: dict[type[ast.operator], Callable[..., Any]] = {ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or}
_COMPARE: dict[type[ast.cmpop], Callable[..., Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.USub: "-",
    ast.UAdd: "+",
    ast.Invert: "~",
}
_BAND = re.compile(r"b([1-9][0-9]*)")
_HELP = (
    "expressions may use b1, b2 ... (bands; or band names for a product input), numbers, "
    "+ - * / **, < <= > >= == !=, & | ~, parentheses "
    "and abs, sqrt, log, minimum, maximum"
)


def check_expression(expression: object) -> tuple[ast.Expression, frozenset[int], frozenset[str]]:
    """The parsed, whitelisted and typed expression, the bands ``bK`` it uses and its other names.

    ConfigError when it is not a valid condition. Names other than ``b1``, ``b2`` ... are band names
    of a product (resolved against it when the mask is bound).
    """
    if not isinstance(expression, str):
        raise ConfigError(f"expression must be a string such as 'b1 > 0.4', got {expression!r}")
    if not expression.strip():
        raise ConfigError(f"expression is empty; write a condition such as 'b1 > 0.4'. {_HELP}")
    if len(expression) > MAX_LENGTH:
        raise ConfigError(
            f"expression is {len(expression)} characters long; at most {MAX_LENGTH} are accepted"
        )
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ConfigError(f"expression {expression!r} is not valid syntax ({e}); {_HELP}") from e
    bands: set[int] = set()
    names: set[str] = set()
    try:
        kind = _kind(tree.body, expression, bands, names)
    except RecursionError as e:
        raise ConfigError(f"expression {expression!r} is nested too deeply") from e
    if kind != "condition":
        raise ConfigError(
            f"expression {expression!r} gives numbers, not a condition: compare it, e.g. '{expression} > 0.4'"
        )
    return tree, frozenset(bands), frozenset(names)


def _refuse(node: ast.AST, expression: str, what: str) -> ConfigError:
    column = getattr(node, "col_offset", None)
    where = f" at column {column + 1}" if column is not None else ""
    return ConfigError(f"expression {expression!r}: {what}{where} is not allowed; {_HELP}")


def _kind(node: ast.AST, expression: str, bands: set[int], names: set[str]) -> Kind:
    """Check ``node`` against the whitelist; its kind: a number (array) or a condition (bool array)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _refuse(node, expression, f"the constant {node.value!r}")
        try:
            float(node.value)
        except OverflowError as e:
            raise _refuse(node, expression, "a number this large") from e
        return "number"
    if isinstance(node, ast.Name):
        match = _BAND.fullmatch(node.id)
        if node.id in FUNCTIONS:
            raise _refuse(node, expression, f"the function {node.id!r} without a call")
        if match is None:
            names.add(node.id)
        else:
            bands.add(int(match.group(1)))
        return "number"
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        left, right = _kind(node.left, expression, bands, names), _kind(node.right, expression, bands, names)
        if op in _ARITHMETIC:
            if left != "number" or right != "number":
                raise ConfigError(
                    f"expression {expression!r}: {_SYMBOLS[op]} at column {node.col_offset + 1} needs "
                    "numbers on both sides, not conditions"
                )
            return "number"
        if op in _LOGIC:
            if left != "condition" or right != "condition":
                raise ConfigError(
                    f"expression {expression!r}: {_SYMBOLS[op]} at column {node.col_offset + 1} combines "
                    "conditions; put each comparison in parentheses, e.g. (b1 > 0.2) & (b2 < 0.5)"
                )
            return "condition"
        raise _refuse(node, expression, f"the operator {type(node.op).__name__}")
    if isinstance(node, ast.UnaryOp):
        operand = _kind(node.operand, expression, bands, names)
        if isinstance(node.op, (ast.USub, ast.UAdd)) and operand == "number":
            return "number"
        if isinstance(node.op, ast.Invert) and operand == "condition":
            return "condition"
        if isinstance(node.op, ast.Not):
            raise _refuse(node, expression, "'not' (use ~(condition))")
        symbol = _SYMBOLS[type(node.op)]
        needs = "a condition" if isinstance(node.op, ast.Invert) else "a number"
        raise ConfigError(
            f"expression {expression!r}: {symbol} at column {node.col_offset + 1} needs {needs}"
        )
    if isinstance(node, ast.Compare):
        for operand in (node.left, *node.comparators):
            if _kind(operand, expression, bands, names) != "number":
                raise ConfigError(
                    f"expression {expression!r}: the comparison at column {node.col_offset + 1} compares "
                    "conditions; compare numbers, and combine conditions with & | in parentheses"
                )
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _refuse(node, expression, f"the comparison {type(op).__name__}")
        return "condition"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise _refuse(node, expression, f"calling {ast.unparse(node.func)!r}")
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _refuse(node, expression, "keyword or * arguments")
        arity = FUNCTIONS[node.func.id][1]
        if len(node.args) != arity:
            raise ConfigError(
                f"expression {expression!r}: {node.func.id} takes {arity} "
                f"argument{'s' if arity > 1 else ''}, got {len(node.args)}"
            )
        for arg in node.args:
            if _kind(arg, expression, bands, names) != "number":
                raise ConfigError(f"expression {expression!r}: {node.func.id} needs numbers, not conditions")
        return "number"
    if isinstance(node, ast.BoolOp):
        word = "and" if isinstance(node.op, ast.And) else "or"
        raise _refuse(node, expression, f"{word!r} (use {'&' if word == 'and' else '|'} with parentheses)")
    raise _refuse(node, expression, f"{type(node).__name__} {ast.unparse(node)!r}")
