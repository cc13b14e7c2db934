"""What a run is asked to do: the value types and string options every layer shares, defined once.

A leaf module: it imports the standard library, :mod:`geomask.errors` and (for type checkers only)
:class:`geomask.kernels.Kernel`, and nothing here imports it back. The YAML models
(:mod:`geomask.config`) build these values; the engine, the executors, the progress observers and the
command line consume them.

A step's mask is any mask source (:class:`geomask.masks.base.MaskSource`, described here by the
structural :class:`MaskSourceLike`, so this module never imports the mask package, which imports the
numerical layers that import this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from geomask.capacity import MAX_WORKERS
from geomask.errors import ConfigError

if TYPE_CHECKING:
    from geomask.kernels import Kernel

__all__ = [
    "Boundary",
    "ClusterSpec",
    "Compress",
    "Distribute",
    "GroupStep",
    "LocalScheduler",
    "MaskSourceLike",
    "Mode",
    "NodataSpec",
    "Op",
    "OutputFormat",
    "OutputSpec",
    "OverviewResampling",
    "ResumeAction",
    "RunOptions",
    "SceneReport",
    "Scheduler",
    "Status",
    "Step",
    "Validity",
    "describe_kernels",
    "is_distributed",
]

Op = Literal["convolve", "correlate"]
"""``convolve`` flips the kernel (``scipy.ndimage.convolve``); ``correlate`` does not."""

Mode = Literal["reflect", "mirror", "nearest", "wrap", "constant", "leave"]
"""Boundary mode at the scene edge, as ``scipy.ndimage`` (``leave``: pixels whose footprint leaves the
scene stay unchanged)."""

Boundary = Mode
"""The config's name for :data:`Mode` (the ``boundary:`` key of a step)."""

LocalScheduler = Literal["threads", "processes", "synchronous", "local-cluster"]
"""The schedulers that need no address: the local pools (:mod:`geomask.executors.local`) and a
``LocalCluster`` started for the run."""

Scheduler = str
"""``threads``, ``processes``, ``synchronous`` (a pool of this machine, kept for the run),
``local-cluster`` (a ``distributed.LocalCluster`` started for the run), a dask.distributed scheduler
address ``tcp://HOST:PORT``, or ``cluster`` (the cluster manager of ``RunOptions.cluster``, set by a
profile's ``cluster:`` section; see :func:`is_distributed`)."""

OutputFormat = Literal["GTiff", "COG"]
"""A tiled GeoTIFF, or a Cloud Optimized GeoTIFF (converted once with GDAL's COG driver)."""

Compress = Literal[
    "deflate", "lzw", "zstd", "lerc", "lerc_deflate", "lerc_zstd", "packbits", "jpeg", "webp", "none"
]
"""The output's compression codec."""

OverviewResampling = Literal[
    "auto", "nearest", "average", "mode", "bilinear", "cubic", "cubicspline", "lanczos", "rms", "gauss"
]
"""How a COG's overviews are computed."""

Status = Literal["done", "failed", "skipped"]
"""What happened to a scene (:attr:`SceneReport.status`)."""

ResumeAction = Literal["write", "replace", "skip"]
"""What to do with a scene's output: write a new file, replace an existing one, or skip the scene."""

NodataSpec = float | Literal["auto"] | None
"""A run's nodata: a number, ``auto`` (the file's own), or None (no nodata)."""


class MaskSourceLike(Protocol):
    """What a step needs of its mask: :class:`geomask.masks.base.MaskSource` (every mask source) fits.

    ``bind(context)`` takes a :class:`geomask.masks.base.MaskContext` and returns a
    :class:`geomask.masks.base.BoundMask`; they are typed loosely here so that this leaf module never
    imports the mask package.
    """

    def describe(self) -> str:
        """A short description for reports and provenance tags."""
        ...

    def bind(self, context: Any) -> Any:
        """Validate against one scene and return the mask bound to its grid."""
        ...


@dataclass(frozen=True)
class Step:
    """One kernel applied inside one mask.

    Attributes
    ----------
    kernel : Kernel
        What to apply (:func:`geomask.kernels.get`).
    mask : MaskSource or None
        Where output pixels change (the target); None = everywhere.
    op : {"convolve", "correlate"}
        ``convolve`` flips the kernel, as ``scipy.ndimage.convolve``.
    mode : str
        Boundary mode at the scene edge (``reflect``, ``mirror``, ``nearest``, ``wrap``,
        ``constant``, ``leave``).
    cval : float
        Value beyond the scene edge for ``constant``.
    normalize : bool
        Renormalise over contributing neighbours where some are nodata or unsupported.
    support : MaskSource or None
        Which neighbours may contribute (None = all valid pixels).
    fill : int or None
        A fill step (:mod:`geomask.fill`): only nodata (and NaN) pixels of the mask change, each
        one with at least ``fill`` valid cells under the kernel's footprint taking the kernel's
        value over them; valid pixels keep theirs. None: an ordinary step.
    """

    kernel: Kernel
    mask: MaskSourceLike | None = None
    op: Op = "convolve"
    mode: Mode = "reflect"
    cval: float = 0.0
    normalize: bool = True
    support: MaskSourceLike | None = None
    fill: int | None = None


Validity = Literal["honour", "ignore"]
"""Whether alpha bands and GDAL mask bands mark invalid pixels (``honour``) or are data (``ignore``)."""


@dataclass(frozen=True)
class OutputSpec:
    """Where and how to write a scene's result.

    ``format`` COG converts the finished tiled GeoTIFF once with GDAL's COG driver.
    ``creation_options`` are GDAL GTiff/COG creation options (e.g. ``{"PREDICTOR": "2"}``);
    ``tags`` are extra metadata tags written on the output. ``block_size``: the output's tile side
    in pixels (a multiple of 16); None (default): the input's tiles when they are square and 128
    to 2048 pixels (so unchanged tiles can be copied, see ``RunOptions.copy_tiles``), else 512.
    ``dtype``: the output's data type (None: the input's; see :mod:`geomask.dtypes`); a conversion
    that cannot hold every input value needs ``clip`` (round half to even and clip to its range).
    ``nodata``: the output's declared nodata, ``auto`` (the input's, or :func:`geomask.dtypes.output_nodata`
    with ``dtype``) or a number (NaN for float outputs) held exactly by the output dtype; pixels invalid
    in the input are written as it, valid pixels keep their values.
    """

    path: Path
    format: OutputFormat = "GTiff"
    compress: str = "deflate"
    creation_options: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    block_size: int | None = None
    overview_resampling: str = "average"
    dtype: str | None = None
    clip: bool = False
    nodata: float | Literal["auto"] = "auto"


Distribute = Literal["auto", "scenes", "windows"]
"""How a batch uses a dask.distributed cluster: ``scenes`` (each scene one task on a worker, which
writes its output), ``windows`` (window tasks on the workers, every output written by this process),
``auto`` (scenes when the batch has at least two scenes and at least as many as worker threads)."""


@dataclass(frozen=True)
class ClusterSpec:
    """A dask cluster manager to start for the run, named by import path (``dask_jobqueue.SLURMCluster``).

    ``options`` are the class's keyword arguments. ``workers`` asks for a fixed number of workers
    (``cluster.scale(workers)``); ``minimum``/``maximum`` for adaptive scaling (``cluster.adapt``);
    neither: the workers the class starts by itself.
    """

    factory: str
    options: Mapping[str, Any] = field(default_factory=dict)
    workers: int | None = None
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class RunOptions:
    """How to run: window size, scheduler, workers, GDAL configuration.

    ``window_size`` (pixels) is rounded up to a multiple of the input's block shape and
    of the output's tile size unless ``align_windows`` is False (then windows are exactly
    ``window_size`` pixels, for tests of arbitrary tilings). ``copy_tiles``: where the
    output's tiles decode like the input's (same codec, predictor, tile size; see
    :mod:`geomask.tiffraw`), unchanged tiles are copied compressed instead of re-encoded
    (False: every tile is re-encoded; the pixels are the same either way). ``distribute`` and
    ``cluster`` (with ``scheduler="cluster"``) choose how and where a distributed run goes
    (:data:`Distribute`, :class:`ClusterSpec`). ``batch`` bounds how many
    windows are in memory at once (default: 4 per worker; on a cluster, 4 per worker thread
    in flight across all scenes). ``threads_per_worker`` and ``memory_limit`` (bytes as text,
    e.g. ``"2 GiB"``, or ``"auto"``) size the workers of ``scheduler="local-cluster"``; the
    workers of an existing cluster are sized by whoever started them. ``workers`` and
    ``threads_per_worker`` are at most :data:`geomask.capacity.MAX_WORKERS` (ConfigError), and
    capped at run time to what the machine holds (:func:`geomask.executors.sizing.fit_options`).
    """

    window_size: int = 1024
    scheduler: Scheduler = "threads"
    workers: int | None = None
    gdal_options: Mapping[str, str] = field(default_factory=dict)
    align_windows: bool = True
    batch: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | None = None
    copy_tiles: bool = True
    distribute: Distribute = "auto"
    cluster: ClusterSpec | None = None

    def __post_init__(self) -> None:
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_WORKERS:
                raise ConfigError(f"{name} must be 1..{MAX_WORKERS}, got {value}")


@dataclass
class SceneReport:
    """What happened to one scene.

    ``notes`` are remarks for the user, e.g. how kernel sizes in map units converted to pixels.
    ``nodata_collisions``: computed pixels (inside a step's mask, valid in the input) with a band whose
    value equals the output's nodata, ``output_nodata`` (as text, e.g. ``0`` or ``nan``; None: the
    output declares none): they will read as nodata.
    """

    input: str
    output: str
    status: Status
    windows_total: int = 0
    windows_computed: int = 0
    windows_skipped: int = 0
    pixels_selected: int = 0
    pixels_changed: int = 0
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    nodata_collisions: int = 0
    output_nodata: str | None = None


@dataclass(frozen=True)
class GroupStep:
    """Several kernels in one step, each applied inside its own region of the same input.

    Attributes
    ----------
    regions : tuple of (MaskSource, Kernel)
        Each region's mask and kernel. Where regions overlap, the later one wins.
    op, mode, cval, normalize
        As for :class:`Step`, shared by every region.
    support : MaskSource, "target" or None
        Which neighbours may contribute: a mask for every region, ``"target"`` for each region's own
        mask (so classes never mix), or None (every valid pixel).
    label : str
        What the regions are (``"landcover"``), for descriptions.

    Notes
    -----
    Where output pixels may change (the union of the regions) is
    :func:`geomask.engine.bind.step_mask`.
    """

    regions: tuple[tuple[MaskSourceLike, Kernel], ...]
    op: Op = "convolve"
    mode: Mode = "reflect"
    cval: float = 0.0
    normalize: bool = True
    support: MaskSourceLike | Literal["target"] | None = None
    label: str = "class"

    def __post_init__(self) -> None:
        if not self.regions:
            raise ConfigError("a per-class step needs at least one region and kernel")

    def describe(self) -> str:
        """``by LABEL: REGION kernel, ...`` for reports and provenance tags."""
        parts = ", ".join(f"{region.describe()} {kernel.describe()}" for region, kernel in self.regions)
        return f"by {self.label}: {parts}"

    def branches(self) -> list[Step]:
        """One :class:`Step` per region, as the region would run on its own."""
        return [
            Step(
                kernel,
                region,
                op=self.op,
                mode=self.mode,
                cval=self.cval,
                normalize=self.normalize,
                support=region if self.support == "target" else self.support,
            )
            for region, kernel in self.regions
        ]


def describe_kernels(step: Step | GroupStep) -> str:
    """The kernel(s) of a step, for reports and provenance tags."""
    if isinstance(step, GroupStep):
        return step.describe()
    fill = f" (fill nodata, min_valid {step.fill})" if step.fill is not None else ""
    return step.kernel.describe() + fill


def is_distributed(scheduler: Scheduler) -> bool:
    """Whether ``scheduler`` is dask.distributed (``local-cluster`` or an address), not a local one."""
    return scheduler not in ("threads", "processes", "synchronous")
