"""Band expressions: pixels where a condition on the scene's bands holds, e.g. an NDVI threshold.

``ExpressionSource("(b4 - b3) / (b4 + b3) > 0.4")`` selects the pixels where the condition is true.

Safety
------
The text is parsed with :func:`ast.parse` and checked node by node against a whitelist before any pixel
is read; it is evaluated by walking that checked tree with numpy, never with ``eval``/``compile``. Only
these nodes are accepted:

* numbers (``0.4``, ``2``, ``1e3``) and bands: ``b1``, ``b2`` ... (1-based band indices of a single-file
  scene) or, for a product (``input: {bands: ...}`` or a STAC item), its band and asset names
  (``(nir - red) / (nir + red) > 0.3``: :mod:`geomask.masks.assets`);
* arithmetic ``+ - * / **`` and unary ``-``/``+`` on numbers;
* comparisons ``< <= > >= == !=`` (chains like ``0 < b1 < 10`` too), which give conditions;
* ``&`` (and), ``|`` (or) and ``~`` (not) on conditions;
* calls of ``abs``, ``sqrt``, ``log`` (one argument) and ``minimum``, ``maximum`` (two), on numbers.

Anything else (attribute access, subscripts, other calls, lambdas, strings, ``and``/``or``/
``not``, keyword arguments ...) is a :class:`~geomask.errors.ConfigError` naming the offending part. The
checker also types the tree: arithmetic needs numbers, ``&``/``|``/``~`` need conditions, and the whole
expression must be a condition, so ``b1 > 0 & b2 > 0`` (which Python reads as ``b1 > (0 & b2) > 0``) is
refused with a hint to add parentheses.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.bandmath import _ARITHMETIC, _COMPARE, _LOGIC, FUNCTIONS, MAX_LENGTH, check_expression
from geomask.errors import ConfigError, MaskError
from geomask.grid import Grid
from geomask.io import open_scene, read_indexed
from geomask.masks._window import check_window
from geomask.masks.base import BoundMask, MaskContext, MaskSource
from geomask.pixels import effective_nodata, valid_pixels

__all__ = ["FUNCTIONS", "MAX_LENGTH", "BoundExpressionMask", "ExpressionSource"]


@dataclass(frozen=True)
class ExpressionSource(MaskSource):
    """Pixels where a condition on the scene's bands is true, e.g. ``"(b4 - b3) / (b4 + b3) > 0.4"``.

    Parameters
    ----------
    expression : str
        The condition (see the module docstring for what it may contain). ``bK`` is band K (1-based) of
        the scene, as stored (scale and offset are not applied).

    Raises
    ------
    ConfigError
        On construction, when the text is not a valid, whitelisted condition.

    Notes
    -----
    Evaluated in float64, per pixel (so trivially tile-invariant), on the bands it references only.
    A pixel is never selected where any referenced band is nodata (the scene's nodata, or NaN), or where
    any intermediate value is not finite: a division by zero, ``log`` of 0 or a negative number, ``sqrt``
    of a negative number or an overflow makes the whole expression False for that pixel (no warning),
    even under ``~``. Memory per window: one float64 array per referenced band plus the intermediates.
    """

    expression: str

    def __post_init__(self) -> None:
        check_expression(self.expression)

    def describe(self) -> str:
        """``expression(TEXT)``."""
        return f"expression({self.expression})"

    def bind(self, context: MaskContext) -> BoundExpressionMask:
        """Check the bands the expression uses exist in the scene (reads its header, no pixels).

        Raises
        ------
        ConfigError
            The expression is invalid or uses a band the scene does not have.
        MaskError
            The context has no scene path.
        InputError
            The scene cannot be opened.
        """
        tree, bands, names = check_expression(self.expression)
        if context.scene_path is None:
            raise MaskError(
                f"expression {self.expression!r} reads the scene's bands, but no scene path was given "
                "(MaskContext.scene_path)"
            )
        with open_scene(context.scene_path) as ds:
            count, dtype = ds.count, ds.dtypes[0]
        if names:
            raise ConfigError(
                f"expression {self.expression!r} uses {', '.join(sorted(names))}, but scene "
                f"{context.scene_path} is a single file whose bands are b1..b{count}: use those, or name "
                "band files with input: {bands: {NAME: FILE, ...}}"
            )
        missing = sorted(band for band in bands if band > count)
        if missing:
            names = ", ".join(f"b{band}" for band in missing)
            raise ConfigError(
                f"expression {self.expression!r} uses {names}, but scene {context.scene_path} has {count} "
                f"band{'' if count == 1 else 's'} (b1..b{count})"
            )
        return BoundExpressionMask(
            self.expression,
            tree,
            tuple(sorted(bands)),
            context.grid,
            context.scene_path,
            effective_nodata(context.nodata, dtype),
        )


class BoundExpressionMask(BoundMask):
    """A checked expression evaluated on the windows of one scene.

    Notes
    -----
    Picklable and thread-safe: holds the checked syntax tree and plain values; the scene is opened in
    every :meth:`render` call.
    """

    def __init__(
        self,
        expression: str,
        tree: ast.Expression,
        bands: tuple[int, ...],
        grid: Grid,
        scene_path: str,
        nodata: float | None,
    ) -> None:
        self.expression = expression
        self.tree = tree
        self.bands = bands
        self.grid = grid
        self.scene_path = scene_path
        self.nodata = nodata

    def describe(self) -> str:
        return f"expression({self.expression})"

    def render(self, window: Window) -> NDArray[np.bool_]:
        row0, col0, height, width = check_window(window, self.grid.shape, repr(self.expression))
        values, valid = self._values(row0, col0, height, width)
        finite = np.ones((height, width), dtype=bool)
        with np.errstate(all="ignore"):
            result = _evaluate(self.tree.body, values, finite)
        return np.ascontiguousarray(np.broadcast_to(result, (height, width)) & finite & valid)

    def _values(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.bool_]]:
        """Each referenced band of the window in float64, by name (``b3``), and where all are valid."""
        values: dict[str, NDArray[np.float64]] = {}
        valid = np.ones((height, width), dtype=bool)
        if self.bands and height and width:
            rows = np.arange(row0, row0 + height, dtype=np.int64)
            cols = np.arange(col0, col0 + width, dtype=np.int64)
            with open_scene(self.scene_path) as ds:
                data = read_indexed(ds, self.bands, rows, cols)
            for band, array in zip(self.bands, data, strict=True):
                ok = valid_pixels(array, self.nodata)
                if ok is not None:
                    valid &= ok
                values[f"b{band}"] = array.astype(np.float64)
        return values, valid


def _evaluate(node: ast.AST, bands: dict[str, NDArray[np.float64]], finite: NDArray[np.bool_]) -> Any:
    """The value of a checked node; clears ``finite`` where a number is not finite."""
    if isinstance(node, ast.Constant):
        return _numeric(np.float64(node.value), finite)
    if isinstance(node, ast.Name):
        return _numeric(bands[node.id], finite)
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, bands, finite), _evaluate(node.right, bands, finite)
        op = type(node.op)
        if op in _LOGIC:
            return _LOGIC[op](left, right)
        return _numeric(_ARITHMETIC[op](left, right), finite)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, bands, finite)
        if isinstance(node.op, ast.Invert):
            return np.logical_not(operand)
        return _numeric(-operand if isinstance(node.op, ast.USub) else operand, finite)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, bands, finite)
        result: Any = True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, bands, finite)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        function = FUNCTIONS[node.func.id][0]
        return _numeric(function(*(_evaluate(arg, bands, finite) for arg in node.args)), finite)
    raise ConfigError(f"unchecked expression node {type(node).__name__}")  # unreachable after _check


def _numeric(value: Any, finite: NDArray[np.bool_]) -> Any:
    """``value``, after clearing ``finite`` where it is NaN or infinite."""
    finite &= np.isfinite(value)
    return value
