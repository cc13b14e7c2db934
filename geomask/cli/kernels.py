"""``geomask kernels``: list every kernel with its parameters and a preview of its weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from geomask.cli.options import DebugOption, handle_errors

if TYPE_CHECKING:
    from geomask import kernels as registry

__all__ = ["kernels", "preview"]

_PREVIEW_SIDE = 5


def preview(kernel: registry.Kernel) -> list[str]:
    """The weights of ``kernel`` as lines of text (at most the central 5x5); a rank filter's footprint."""
    import numpy as np

    rows, cols = kernel.shape
    if kernel.kind != "linear":
        return [f"{kernel.kind} of the {rows}x{cols} neighbourhood"]
    r0 = max(0, rows // 2 - _PREVIEW_SIDE // 2)
    c0 = max(0, cols // 2 - _PREVIEW_SIDE // 2)
    block = np.asarray(kernel.weights[r0 : r0 + _PREVIEW_SIDE, c0 : c0 + _PREVIEW_SIDE])
    lines = [" ".join(f"{v:8.4g}" for v in row) for row in block]
    if block.shape != kernel.shape:
        lines.append(f"(the central {block.shape[0]}x{block.shape[1]} of {rows}x{cols})")
    return lines


def kernels(debug: DebugOption = False) -> None:
    """List every kernel: name, what it does, its parameters, and its default weights.

    Use a kernel in a pipeline as `kernel: {name: NAME, PARAM: VALUE}`, or give your own weights as
    `kernel: {matrix: [[...], ...]}` (both side lengths odd). Sizes are in pixels.
    """
    from geomask import kernels as registry  # numpy: loaded when the command runs, not for --help

    with handle_errors(debug, writes=False):
        blocks = []
        for name in registry.names():
            spec = registry.KERNELS[name]
            kernel = registry.get(name)
            lines = [f"{name}: {spec.summary}"]
            lines += [f"  {param}: {text}" for param, text in spec.params.items()] or ["  (no parameters)"]
            lines.append(f"  default: {kernel.describe()}")
            lines += [f"    {line}" for line in preview(kernel)]
            blocks.append("\n".join(lines))
        blocks.append(
            "custom: your own weights, e.g. kernel: {matrix: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]}\n"
            "  matrix: rows of numbers, both side lengths odd"
        )
        typer.echo("\n\n".join(blocks))
