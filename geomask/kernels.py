"""Kernels: named weight matrices and neighbourhood filters, validated.

A :class:`Kernel` is either *linear* (a weight matrix, applied as a
convolution or a correlation) or a *rank* filter (``median``, ``minimum``,
``maximum`` over a square footprint). Every kernel has odd side lengths, so its
centre pixel is well defined; its halo (the number of pixels a window must be
read beyond its edges) is ``(rows // 2, cols // 2)`` and is only computed by
:attr:`Kernel.halo`.

Weights are float64. Kernels that are the outer product of two 1-D vectors
(``box``, ``gaussian``) carry those factors in :attr:`Kernel.separable`; the
2-D :attr:`Kernel.weights` are then exactly ``np.outer(column, row)``.

Sizes are bounded: no side may exceed :data:`MAX_SIDE` pixels, and
:func:`shape` computes a registry kernel's size from its parameters alone
(``2 * ceil(3 * sigma) + 1`` for a gaussian), so an oversized kernel is refused
before any matrix is allocated.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from geomask.errors import KernelError
from geomask.messages import did_you_mean

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

# numpy is imported inside the functions that build weights: the registry, the parameter checks
# (:func:`shape`) and the config models generated from them load without it, so `geomask validate`
# on a pipeline of sized kernels (box, gaussian, disk, rank filters) never loads numpy (60 ms).

__all__ = [
    "KERNELS",
    "MAX_SIDE",
    "MIN_SIGMA",
    "Kernel",
    "KernelKind",
    "KernelSpec",
    "from_matrix",
    "get",
    "names",
    "shape",
]

KernelKind = Literal["linear", "median", "minimum", "maximum"]

MAX_SIDE = 2001
"""Largest kernel side in pixels (radius 1000): 32 MB of weights, a 1000-pixel halo around every window."""

MIN_SIGMA = 0.01
"""Smallest gaussian sigma in pixels; below it every weight but the centre is exactly 0 (no change)."""


@dataclass(frozen=True, eq=False)
class Kernel:
    """A validated kernel.

    Attributes
    ----------
    name : str
        Registry name (``"gaussian"``) or ``"custom"`` for a user matrix.
    weights : ndarray of float64, shape (rows, cols)
        The weight matrix, both sides odd. For rank filters: ones over the footprint.
    kind : {"linear", "median", "minimum", "maximum"}
        ``linear`` kernels are weighted sums; the others are rank filters.
    params : dict
        The parameters the kernel was made with (for reports and provenance).
    separable : tuple of two 1-D float64 arrays, or None
        ``(column, row)`` factors with ``weights == np.outer(column, row)``.
    """

    name: str
    weights: NDArray[np.float64]
    kind: KernelKind = "linear"
    params: dict[str, Any] = field(default_factory=dict)
    separable: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    def __post_init__(self) -> None:
        import numpy as np

        w = np.asarray(self.weights, dtype=np.float64)
        if w.ndim != 2:
            raise KernelError(f"kernel {self.name!r} must be a 2-D matrix, got {w.ndim} dimension(s)")
        if w.size == 0:
            raise KernelError(f"kernel {self.name!r} is empty: give at least one row and one column")
        rows, cols = w.shape
        if rows % 2 == 0 or cols % 2 == 0:
            raise KernelError(
                f"kernel {self.name!r} is {rows}x{cols}: both side lengths must be odd "
                "so the kernel has a centre pixel"
            )
        _check_side(self.name, max(rows, cols), f"the matrix is {rows}x{cols}")
        if not np.all(np.isfinite(w)):
            raise KernelError(f"kernel {self.name!r} has NaN or infinite weights: use finite numbers")
        with np.errstate(over="ignore"):
            total = float(np.abs(w).sum())
        if not math.isfinite(total):  # weighted sums and the normalisation would be inf or NaN
            raise KernelError(
                f"kernel {self.name!r}: the sum of its absolute weights overflows (over 1.8e308): "
                "scale the weights down"
            )
        w = np.ascontiguousarray(w)
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the weight matrix."""
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))

    @property
    def halo(self) -> tuple[int, int]:
        """Pixels needed beyond a window's edge, (rows, cols): half the kernel's side lengths."""
        rows, cols = self.shape
        return (rows // 2, cols // 2)

    @property
    def weight_sum(self) -> float:
        """Sum of the weights (for rank filters: the footprint size)."""
        return float(self.weights.sum())

    def flipped(self) -> Kernel:
        """The kernel rotated by 180 degrees: convolution with this == correlation with that."""
        sep = None
        if self.separable is not None:
            sep = (self.separable[0][::-1].copy(), self.separable[1][::-1].copy())
        return Kernel(self.name, self.weights[::-1, ::-1].copy(), self.kind, dict(self.params), sep)

    def check_fits(self, height: int, width: int) -> None:
        """Raise :class:`KernelError` when the kernel is larger than a ``height`` x ``width`` scene."""
        rows, cols = self.shape
        if rows > height or cols > width:
            raise KernelError(
                f"kernel {self.name!r} is {rows}x{cols} but the scene is only {height}x{width} pixels: "
                "use a smaller kernel"
            )

    def describe(self) -> str:
        """A short human label, e.g. ``gaussian(sigma=1.0, radius=3) 7x7``."""
        args = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "matrix")
        rows, cols = self.shape
        return f"{self.name}({args}) {rows}x{cols}"


# --- parameter checks ---------------------------------------------------------------------------


def _show(value: int | float) -> str:
    """A number for a message: a huge integer as ``about 10^N``, never a thousand digits."""
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"{'-' if value < 0 else ''}about 10^{len(str(abs(value))) - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_side(name: str, side: int | float, what: str, fix: str = "use a smaller kernel") -> None:
    """Raise :class:`KernelError` when a kernel side of ``side`` pixels exceeds :data:`MAX_SIDE`."""
    if side > MAX_SIDE:
        raise KernelError(
            f"kernel {name!r}: {what}, a side of {_show(side)} pixels, over the limit of {MAX_SIDE}: {fix}"
        )


def _whole(name: str, value: Any, param: str) -> int:
    """``value`` as an int (a whole float is accepted); KernelError for anything else."""
    np = sys.modules.get("numpy")  # a numpy scalar exists only once numpy is loaded
    ints: tuple[type, ...] = (int,) if np is None else (int, np.integer)
    floats: tuple[type, ...] = (float,) if np is None else (float, np.floating)
    if isinstance(value, bool) or not isinstance(value, ints + floats):
        raise KernelError(f"kernel {name!r}: {param} must be a whole number of pixels, got {value!r}")
    if isinstance(value, floats):
        if not math.isfinite(value) or not float(value).is_integer():
            raise KernelError(f"kernel {name!r}: {param} must be a whole number of pixels, got {value!r}")
        if abs(value) > 4 * MAX_SIDE:  # not int(1e300): a 300-digit number helps nobody
            raise KernelError(
                f"kernel {name!r}: {param} must be a whole number of pixels from 0 to {MAX_SIDE}, "
                f"got {float(value):g}"
            )
    return int(value)


def _odd_size(name: str, value: Any, param: str = "size") -> int:
    value = _whole(name, value, param)
    _check_side(name, value, f"{param} {_show(value)}", f"give {param} <= {MAX_SIDE}")
    if value < 1 or value % 2 == 0:
        raise KernelError(
            f"kernel {name!r}: {param} must be a positive odd number (3, 5, 7, ...), got {_show(value)}"
        )
    return value


def _positive_number(name: str, value: Any, param: str) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    except (TypeError, ValueError) as e:
        raise KernelError(f"kernel {name!r}: {param} must be a number, got {value!r}") from e
    if not math.isfinite(number) or number <= 0:
        shown = _show(value) if isinstance(value, int) else repr(value)
        raise KernelError(f"kernel {name!r}: {param} must be a finite number > 0, got {shown}")
    return number


def _radius(name: str, value: Any) -> int:
    value = _whole(name, value, "radius")
    if value < 0:
        raise KernelError(f"kernel {name!r}: radius must be >= 0, got {_show(value)}")
    _check_side(name, 2 * value + 1, f"radius {_show(value)}", f"give radius <= {MAX_SIDE // 2}")
    return value


def _gaussian_params(sigma: Any, radius: Any) -> tuple[float, int]:
    """Checked ``(sigma, radius)`` of a gaussian, the radius defaulting to ``ceil(3 * sigma)``."""
    sigma = _positive_number("gaussian", sigma, "sigma")
    if sigma < MIN_SIGMA:
        raise KernelError(
            f"kernel 'gaussian': sigma must be at least {MIN_SIGMA} pixels, got {sigma:g} (a smaller "
            "sigma leaves every pixel unchanged: drop the step or use a larger sigma)"
        )
    if radius is not None:
        return sigma, _radius("gaussian", radius)
    reach = 3 * sigma  # may be inf (sigma > 6e307): math.ceil would raise OverflowError
    _check_side(
        "gaussian",
        2 * math.ceil(reach) + 1 if reach < 1e15 else 2 * reach + 1,
        f"sigma {sigma:g} gives a radius of ceil(3 * sigma)",
        f"use sigma <= {(MAX_SIDE // 2) / 3:.6g} or give a smaller radius",
    )
    return sigma, math.ceil(3 * sigma)


def shape(name: str, **params: Any) -> tuple[int, int]:
    """The (rows, cols) of kernel ``name`` made with ``params``, checked without building its weights.

    Checks everything :func:`get` checks, with the same messages, but allocates nothing for registry
    kernels with a size parameter (``box``, ``gaussian``, ``disk`` and the rank filters); the 3x3 ones
    and custom matrices (already in memory) are built.

    Raises
    ------
    KernelError
        An unknown name or parameter, an invalid value, or a side over :data:`MAX_SIDE`.
    """
    spec = _spec(name, params)
    if spec is None or spec.name not in _SIZED:
        return get(name, **params).shape
    if spec.name == "gaussian":
        side = 2 * _gaussian_params(params.get("sigma", 1.0), params.get("radius"))[1] + 1
    elif spec.name == "disk":
        side = 2 * _radius("disk", params.get("radius", 1)) + 1
    else:
        side = _odd_size(spec.name, params.get("size", 3))
    return side, side


# --- factories ----------------------------------------------------------------------------------


def _separable(
    name: str, column: NDArray[np.float64], row: NDArray[np.float64], params: dict[str, Any]
) -> Kernel:
    import numpy as np

    return Kernel(name, np.outer(column, row), "linear", params, (column, row))


def _box(size: int = 3) -> Kernel:
    import numpy as np

    size = _odd_size("box", size)
    factor = np.full(size, 1.0 / size)
    return _separable("box", factor, factor.copy(), {"size": size})


def _gaussian(sigma: float = 1.0, radius: int | None = None) -> Kernel:
    import numpy as np

    sigma, r = _gaussian_params(sigma, radius)
    # Same formula as scipy.ndimage's gaussian_filter1d, so the weights match it exactly.
    x = np.arange(-r, r + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi /= phi.sum()
    return _separable("gaussian", phi, phi.copy(), {"sigma": sigma, "radius": r})


def _disk(radius: int = 1) -> Kernel:
    import numpy as np

    r = _radius("disk", radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    inside = (x * x + y * y) <= r * r
    return Kernel("disk", inside / inside.sum(), "linear", {"radius": r})


def _sharpen(amount: float = 1.0) -> Kernel:
    import numpy as np

    try:
        a = float(amount)
    except OverflowError:
        a = math.inf
    except (TypeError, ValueError) as e:
        raise KernelError(f"kernel 'sharpen': amount must be a number, got {amount!r}") from e
    if not math.isfinite(a) or not math.isfinite(1.0 + 4.0 * a):
        raise KernelError(f"kernel 'sharpen': amount must be a finite number below 1e307, got {a:g}")
    w = np.array([[0.0, -a, 0.0], [-a, 1.0 + 4.0 * a, -a], [0.0, -a, 0.0]])
    return Kernel("sharpen", w, "linear", {"amount": a})


def _fixed(name: str, matrix: list[list[float]], separable: tuple[list[float], list[float]] | None = None):
    def make() -> Kernel:
        import numpy as np

        if separable is not None:
            return _separable(name, np.array(separable[0], float), np.array(separable[1], float), {})
        return Kernel(name, np.array(matrix, dtype=np.float64), "linear", {})

    return make


def _rank(kind: KernelKind) -> Callable[..., Kernel]:
    def make(size: int = 3) -> Kernel:
        import numpy as np

        s = _odd_size(kind, size)
        return Kernel(kind, np.ones((s, s)), kind, {"size": s})

    return make


def from_matrix(matrix: ArrayLike, name: str = "custom") -> Kernel:
    """A linear kernel from a user matrix (rows of numbers; both side lengths odd)."""
    import numpy as np

    try:
        w = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise KernelError(
            f"kernel {name!r}: matrix must be a rectangular list of rows of numbers ({e})"
        ) from e
    if w.ndim == 1 and w.size == 0:
        w = w.reshape(0, 0)
    return Kernel(name, w, "linear", {"matrix": w.tolist()})


@dataclass(frozen=True)
class KernelSpec:
    """A registry entry: the factory and a one-line summary of its parameters."""

    name: str
    factory: Callable[..., Kernel]
    summary: str
    params: dict[str, str]


_SIZE = {"size": "odd side length in pixels (default 3)"}

KERNELS: dict[str, KernelSpec] = {
    spec.name: spec
    for spec in [
        KernelSpec("box", _box, "mean over a square", {"size": "odd side length in pixels (default 3)"}),
        KernelSpec(
            "gaussian",
            _gaussian,
            "gaussian blur (denoise)",
            {
                "sigma": "standard deviation in pixels, > 0 (default 1)",
                "radius": "half-width, default ceil(3*sigma)",
            },
        ),
        KernelSpec("disk", _disk, "mean over a disk", {"radius": "radius in pixels (default 1)"}),
        KernelSpec("sharpen", _sharpen, "unsharp 3x3 (weights sum to 1)", {"amount": "strength (default 1)"}),
        KernelSpec(
            "laplacian",
            _fixed("laplacian", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
            "4-neighbour Laplacian edge detector (weights sum to 0)",
            {},
        ),
        KernelSpec(
            "sobel_x",
            _fixed("sobel_x", [], ([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])),
            "horizontal gradient (weights sum to 0)",
            {},
        ),
        KernelSpec(
            "sobel_y",
            _fixed("sobel_y", [], ([-1.0, 0.0, 1.0], [1.0, 2.0, 1.0])),
            "vertical gradient (weights sum to 0)",
            {},
        ),
        KernelSpec("emboss", _fixed("emboss", [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]), "emboss relief", {}),
        KernelSpec(
            "median", _rank("median"), "median over a square (rank filter)", {"size": "odd side (default 3)"}
        ),
        KernelSpec(
            "minimum",
            _rank("minimum"),
            "minimum over a square (rank filter)",
            {"size": "odd side (default 3)"},
        ),
        KernelSpec(
            "maximum",
            _rank("maximum"),
            "maximum over a square (rank filter)",
            {"size": "odd side (default 3)"},
        ),
    ]
}


def names() -> list[str]:
    """Every registered kernel name, sorted."""
    return sorted(KERNELS)


_SIZED = ("box", "gaussian", "disk", "median", "minimum", "maximum")


def _spec(name: str, params: dict[str, Any]) -> KernelSpec | None:
    """The registry entry of ``name`` (None for a custom matrix), its parameter names checked."""
    if name in ("custom", "matrix"):
        unknown = set(params) - {"matrix"}
        if unknown or "matrix" not in params:
            raise KernelError("a custom kernel takes exactly one parameter, matrix: [[...], ...]")
        return None
    spec = KERNELS.get(name)
    if spec is None:
        hint = did_you_mean(name, names(), cutoff=0.6)
        raise KernelError(f"unknown kernel '{name}'.{hint} Known kernels: {', '.join(names())}, custom")
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        allowed = ", ".join(spec.params) or "none"
        raise KernelError(f"kernel {name!r} has no parameter {unknown[0]!r} (parameters: {allowed})")
    return spec


def get(name: str, **params: Any) -> Kernel:
    """Make the kernel ``name`` with ``params``.

    ``get("custom", matrix=[[...]])`` (or ``get("matrix", matrix=...)``) builds a
    kernel from a user matrix. Raises :class:`~geomask.errors.KernelError` for an
    unknown name (with a did-you-mean), an unknown parameter or an invalid value,
    including a size over :data:`MAX_SIDE` (checked before any weight is computed).
    """
    spec = _spec(name, params)
    if spec is None:
        return from_matrix(params["matrix"])
    return spec.factory(**params)


def as_kernel(kernel: Kernel | ArrayLike | str | Sequence[Any]) -> Kernel:
    """Normalise ``kernel`` (a Kernel, a registry name, or a matrix) to a :class:`Kernel`."""
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str):
        return get(kernel)
    return from_matrix(kernel)


#: Registry kernels whose weights sum to more than 0 whatever their parameters (normalised to 1), and
#: the rank filters (not linear): :func:`zero_sum_problem` never refuses them.
_NEVER_ZERO_SUM = frozenset({"box", "gaussian", "disk", "median", "minimum", "maximum"})


def can_sum_to_zero(name: str) -> bool:
    """Whether :func:`zero_sum_problem` may refuse kernel ``name`` (a registry name or ``custom``):
    False for the normalised ``box``, ``gaussian`` and ``disk`` and the rank filters, known without
    building their weights."""
    return name not in _NEVER_ZERO_SUM


def zero_sum_problem(
    kernel: Kernel, normalize: bool, *, nodata: bool, masked: bool, support: bool
) -> str | None:
    """Why a renormalised ``kernel`` cannot run on a scene, or None.

    A linear kernel whose weights sum to 0 or less (a Laplacian) cannot be renormalised over
    missing neighbours: refused when the scene has a nodata value (``nodata``), alpha or GDAL mask
    pixels (``masked``) or the step a ``support``. The message names the settings that lift it.
    """
    if kernel.kind != "linear" or not normalize or kernel.weight_sum > 0 or not (nodata or masked or support):
        return None
    causes = [
        cause
        for cause, present in (
            ("nodata", nodata),
            ("transparent or masked (alpha, GDAL mask)", masked),
            ("unsupported", support),
        )
        if present
    ]
    fixes = ["normalize: false (missing neighbours then count as 0)"]
    fixes += ["nodata: none"] if nodata else []
    fixes += ["validity: ignore"] if masked else []
    return (
        f"kernel {kernel.name!r} has weights summing to {kernel.weight_sum:g}: it cannot be renormalised "
        f"over {' or '.join(causes)} neighbours; set {' or '.join(fixes)}"
    )
