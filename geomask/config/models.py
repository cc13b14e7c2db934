"""The pipeline and run-profile models: one set of strict pydantic models for YAML and Python.

Every model forbids unknown keys and uses strict types, so YAML's guesses never pass silently
(``NO`` is not a string, ``"3"`` is not a number). Paths are resolved against the ``base_dir`` in the
validation context (the YAML file's folder), or left relative to the working directory when a model is
built from Python without one. Kernel parameters are checked by building the kernel with
:func:`geomask.kernels.get`.

The engine's types (:class:`~geomask.engine.Step`, :class:`~geomask.engine.RunOptions`) and the mask
sources are imported where they are built, so validating a file (``geomask validate``) does not load
rasterio, dask or numba.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import inspect
import json
import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from geomask import kernels
from geomask.config._report import At, show
from geomask.config.yamlsafe import SourceMap
from geomask.errors import ConfigError, InputError, KernelError
from geomask.units import LENGTH_PARAMS, Length, looks_like_length, parse_length, resolve_length

if TYPE_CHECKING:
    from geomask.engine import RunOptions, Step
    from geomask.grid import Grid
    from geomask.masks.base import MaskSource

__all__ = [
    "TEMPLATE_FIELDS",
    "Boundary",
    "Compress",
    "KernelConfig",
    "MatrixKernel",
    "Op",
    "OutputConfig",
    "Pipeline",
    "Profile",
    "StepConfig",
    "VectorMask",
    "shape_problems",
]

Boundary = Literal["reflect", "mirror", "nearest", "wrap", "constant", "leave"]
Op = Literal["convolve", "correlate"]
Compress = Literal[
    "deflate", "lzw", "zstd", "lerc", "lerc_deflate", "lerc_zstd", "packbits", "jpeg", "webp", "none"
]
TEMPLATE_FIELDS = ("stem", "name", "parent")
"""Placeholders allowed in ``output.path``: the input's stem, file name and parent folder name."""

# --- field types ---------------------------------------------------------------------------------


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return Path(base) if base is not None else None


def _resolve(text: str, info: ValidationInfo) -> str:
    path = Path(text).expanduser()
    base = _base_dir(info)
    if base is not None and not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


def _path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("path_type", "expected a file path, got {got}", {"got": show(value)})
    return Path(_resolve(value, info))


def _inputs(value: Any, info: ValidationInfo) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise PydanticCustomError("input_type", "give at least one input path", {})
    out = []
    for item in items:
        if isinstance(item, Path):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            raise PydanticCustomError(
                "input_type", "expected a path, a glob or a list of paths, got {got}", {"got": show(item)}
            )
        out.append(_resolve(item, info))
    return out


def _nodata(value: Any) -> float | Literal["auto"] | None:
    if value is None or value == "none":
        return None
    if value == "auto":
        return "auto"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise PydanticCustomError(
        "nodata_type", "expected auto, none or a number, got {got}", {"got": show(value)}
    )


def _gdal_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PydanticCustomError(
            "option_type",
            "expected text or a number, got {got} (write YES/NO for switches)",
            {"got": show(value)},
        )
    return str(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


FilePath = Annotated[
    Path,
    PlainValidator(_path),
    WithJsonSchema({"type": "string", "description": "a path, relative to the YAML file"}),
]
InputPaths = Annotated[
    list[str],
    PlainValidator(_inputs),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
            "description": "a GeoTIFF path, a glob (data/*.tif) or a list of them, relative to the YAML file",
        }
    ),
]
Nodata = Annotated[
    float | Literal["auto"] | None,
    PlainValidator(_nodata),
    WithJsonSchema({"anyOf": [{"enum": ["auto", "none", None]}, {"type": "number"}]}),
]
GdalValue = Annotated[str, PlainValidator(_gdal_value), WithJsonSchema({"type": ["string", "number"]})]
Name = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=False)


# --- masks ---------------------------------------------------------------------------------------


class VectorMask(_Strict):
    """Pixels covered by the features of a vector file (GeoPackage, GeoJSON, Shapefile ...)."""

    vector: FilePath = Field(description="the vector file, in any CRS (reprojected to the scene's)")
    layer: Name | int | None = Field(
        None, description="layer name or index, needed when the file has several"
    )
    all_touched: bool = Field(
        False,
        description="false: pixels whose centre is inside a polygon; true: every pixel a polygon touches",
    )
    where: Name | None = Field(None, description="OGR SQL attribute filter, e.g. \"landcover = 'forest'\"")
    buffer: float | None = Field(
        None,
        allow_inf_nan=False,
        description="grow (>0) or shrink (<0) polygons, in units of the scene's CRS",
    )
    crs: Name | None = Field(None, description="CRS to assume when the file declares none, e.g. EPSG:4326")
    require_overlap: bool = Field(
        False, description="fail instead of warning when no feature touches the scene"
    )

    def to_source(self) -> MaskSource:
        """The :class:`~geomask.masks.VectorSource` this section describes."""
        from geomask.masks.vector import VectorSource

        return VectorSource(
            self.vector,
            layer=self.layer,
            all_touched=self.all_touched,
            where=self.where,
            buffer=self.buffer,
            crs=self.crs,
            require_overlap=self.require_overlap,
        )


MaskConfig = VectorMask
"""A mask section (only vector files for now; other sources join as a union keyed by their first key)."""


# --- kernels -------------------------------------------------------------------------------------


class _KernelBase(_Strict):
    tag: ClassVar[str] = ""

    def _params(self) -> dict[str, Any]:
        # in declaration order, so notes and messages are stable
        return {
            k: getattr(self, k) for k in type(self).model_fields if k in self.model_fields_set and k != "name"
        }

    def uses_map_units(self) -> bool:
        """Whether a parameter is a length in map units (then :meth:`build` needs the scene's grid)."""
        return any(isinstance(v, Length) and v.unit != "px" for v in self._params().values())

    def resolve(self, grid: Grid | None = None) -> tuple[kernels.Kernel, list[str]]:
        """The kernel with its lengths converted to pixels on ``grid``, and a note per map-unit length.

        Raises
        ------
        KernelError
            A length in map units without ``grid``, a unit that does not suit the grid's CRS, or
            non-square pixels that give different sizes along x and y (see :mod:`geomask.units`).
        GridError
            A length in map units on a grid without CRS.
        """
        params = self._params()
        notes = []
        for key, value in params.items():
            if isinstance(value, Length):
                params[key], note = resolve_length(self.tag, key, value, grid)
                if value.unit != "px":
                    notes.append(note)
        return kernels.get(self.tag, **params), notes

    def build(self, grid: Grid | None = None) -> kernels.Kernel:
        """The validated :class:`~geomask.kernels.Kernel`, lengths converted with ``grid``'s pixel size."""
        return self.resolve(grid)[0]

    @model_validator(mode="after")
    def _check(self) -> _KernelBase:
        params = self._params()
        for key, value in params.items():
            # Map units are checked per scene; here a nominal 1 pixel checks the other parameters.
            if isinstance(value, Length):
                params[key] = value.value if value.unit == "px" else 1
        try:
            kernels.get(self.tag, **params)
        except KernelError as e:
            raise ValueError(str(e)) from e
        return self


class MatrixKernel(_KernelBase):
    """A custom linear kernel: rows of weights, both side lengths odd."""

    tag: ClassVar[str] = "custom"
    name: Literal["custom", "matrix"] = "custom"
    matrix: list[Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1)]] = Field(
        min_length=1, description="rows of weights, e.g. [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]"
    )


def _length_text(value: Any) -> Any:
    # Only "number unit" text is read as a length; anything else goes on to the pixel type, whose
    # message ("expected a whole number, got 'three'", "remove the quotes") fits it better.
    if not isinstance(value, str) or not looks_like_length(value):
        return value
    try:
        return parse_length(value)
    except ValueError as e:
        raise PydanticCustomError("option_length", "{message}", {"message": str(e)}) from e


def _length_instance(value: Any) -> Length:
    if isinstance(value, Length):
        return value
    raise PydanticCustomError(
        "option_length", "expected a length such as '30 m', got {got}", {"got": show(value)}
    )


LengthValue = Annotated[
    Length,
    PlainValidator(_length_instance),
    PlainSerializer(str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*[0-9.]+([eE][-+]?[0-9]+)?\s*(px|m|km|deg)\s*$",
            "description": "a length: '30 m', '0.5 km' (projected scenes), '0.01 deg' (geographic), '3 px'",
        }
    ),
]


def _kernel_model(spec: kernels.KernelSpec) -> type[_KernelBase]:
    signature = inspect.signature(spec.factory, eval_str=True)
    fields: dict[str, Any] = {"name": (Literal[spec.name], Field(description=spec.summary))}  # type: ignore[valid-type]
    for param in signature.parameters.values():
        default = ... if param.default is inspect.Parameter.empty else param.default
        annotation = param.annotation
        description = spec.params.get(param.name)
        if param.name in LENGTH_PARAMS:
            # pixels as before, or a length in map units converted per scene (geomask.units)
            annotation = Annotated[Union[annotation, LengthValue], BeforeValidator(_length_text)]  # noqa: UP007
            description = f"{description}; or a length in map units, e.g. '30 m', '0.5 km', '0.01 deg'"
        fields[param.name] = (annotation, Field(default, description=description))
    model = create_model(  # type: ignore[call-overload]
        f"{spec.name.title().replace('_', '')}Kernel",
        __base__=_KernelBase,
        __doc__=f"{spec.summary}.",
        **fields,
    )
    model.tag = spec.name
    return model


def _kernel_tag(value: Any) -> str | None:
    if isinstance(value, _KernelBase):
        return value.tag
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    if name is None and "matrix" in value:
        return "custom"
    if name == "matrix":
        return "custom"
    return name if isinstance(name, str) else None


_KERNEL_MODELS: dict[str, type[_KernelBase]] = {
    **{name: _kernel_model(spec) for name, spec in kernels.KERNELS.items()},
    "custom": MatrixKernel,
}
KernelConfig = Annotated[
    Union[tuple(Annotated[m, Tag(t)] for t, m in _KERNEL_MODELS.items())],  # type: ignore[valid-type] # noqa: UP007
    Discriminator(_kernel_tag),
]
"""``{name: NAME, <params>}`` for a registry kernel or ``{matrix: [[...]]}`` for a custom one."""


# --- steps, output, pipeline ----------------------------------------------------------------------


_OP = Field(description="convolve (kernel flipped, as scipy.ndimage.convolve) or correlate")
_BOUNDARY = Field(
    description="values beyond the scene edge: reflect, mirror, nearest, wrap, constant (cval) or "
    "leave (pixels whose kernel leaves the scene stay unchanged)"
)
_CVAL = Field(description="the value beyond the scene edge for boundary: constant")
_NORMALIZE = Field(description="renormalise the kernel over the valid (non-nodata, supported) neighbours")
_SUPPORT = Field(description="only pixels inside this mask contribute as neighbours (default: all valid)")
_KERNEL = Field(description="the kernel: {name: NAME, <params>} or {matrix: [[...]]}")
_MASK = Field(description="where the kernel applies (default: the whole scene)")


class StepConfig(_Strict):
    """One kernel applied inside one mask; steps run in order, each on the previous result."""

    mask: Annotated[MaskConfig | None, _MASK] = None
    kernel: Annotated[KernelConfig, _KERNEL]
    op: Annotated[Op, _OP] = "convolve"
    boundary: Annotated[Boundary, _BOUNDARY] = "reflect"
    cval: Annotated[float, _CVAL] = 0.0
    normalize: Annotated[bool, _NORMALIZE] = True
    support: Annotated[MaskConfig | None, _SUPPORT] = None

    def to_step(self, grid: Grid | None = None) -> Step:
        """The engine's :class:`~geomask.engine.Step`, kernel lengths converted with ``grid``."""
        from geomask.engine import Step

        return Step(
            kernel=self.kernel.build(grid),
            mask=self.mask.to_source() if self.mask is not None else None,
            op=self.op,
            mode=self.boundary,
            cval=self.cval,
            normalize=self.normalize,
            support=self.support.to_source() if self.support is not None else None,
        )


class OutputConfig(_Strict):
    """Where and how the result is written."""

    path: FilePath = Field(
        description="output GeoTIFF; with several inputs a template using {stem}, {name} or {parent}"
    )
    format: Literal["GTiff", "COG"] = Field("GTiff", description="GTiff (tiled GeoTIFF) or COG")
    compress: Annotated[Compress, BeforeValidator(_lower)] = Field("deflate", description="compression codec")
    overwrite: bool = Field(
        False,
        description="always redo and replace the output, as --overwrite (false: reruns skip current outputs)",
    )

    @model_validator(mode="after")
    def _template(self) -> OutputConfig:
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(str(self.path)) if f is not None}
        except ValueError as e:
            raise At(("path",), f"invalid template {str(self.path)!r} ({e}): double braces {{{{ }}}} ") from e
        unknown = sorted(used - set(TEMPLATE_FIELDS))
        if unknown:
            raise At(("path",), f"unknown placeholder {{{unknown[0]}}}: use {{stem}}, {{name}} or {{parent}}")
        return self


_STEP_KEYS = ("kernel", "mask", "support", "op", "boundary", "cval", "normalize")


def shape_problems(data: Mapping[str, Any]) -> list[At]:
    """Problems that involve several keys of a pipeline mapping (checked even when fields are invalid).

    Parameters
    ----------
    data : mapping
        The pipeline's top-level keys and values, as loaded or as validated.

    Returns
    -------
    list of At
        ValueErrors that carry the key they concern in ``.key``.
    """
    problems: list[At] = []
    bands = data.get("bands")
    if isinstance(bands, list) and len({repr(b) for b in bands}) != len(bands):
        problems.append(At(("bands",), "a band is listed twice: list each band once"))
    if data.get("steps") is None and data.get("kernel") is None:
        problems.append(
            At(("kernel",), "missing required key 'kernel' (or 'steps'): say which kernel to apply")
        )
    if data.get("steps") is not None:
        problems.extend(
            At((k,), f"{k!r} given both at the top level and through 'steps': move it into each step")
            for k in _STEP_KEYS
            if k in data
        )
    return problems


class Pipeline(_Strict):
    """A whole pipeline file.

    Either the single-step keys (``kernel``, ``mask``, ``op``, ``boundary``, ``cval``, ``normalize``,
    ``support``) at the top level, or ``steps:`` with a list of them, not both.
    """

    input: InputPaths = Field(description="GeoTIFF scene(s): a path, a glob or a list, relative to this file")
    bands: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, min_length=1, description="1-based bands to filter (default all); others are copied unchanged"
    )
    nodata: Nodata = Field(
        "auto",
        description="auto (the file's nodata), none (every pixel is data) or a number; nodata pixels do not "
        "contribute and stay unchanged",
    )
    mask: Annotated[MaskConfig | None, _MASK] = None
    kernel: Annotated[KernelConfig | None, _KERNEL] = None
    op: Annotated[Op, _OP] = "convolve"
    boundary: Annotated[Boundary, _BOUNDARY] = "reflect"
    cval: Annotated[float, _CVAL] = 0.0
    normalize: Annotated[bool, _NORMALIZE] = True
    support: Annotated[MaskConfig | None, _SUPPORT] = None
    steps: list[StepConfig] | None = Field(
        None, min_length=1, description="steps applied in order (instead of kernel/mask at the top level)"
    )
    output: OutputConfig = Field(description="where and how to write the result")

    _source: SourceMap | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _shape(self) -> Pipeline:
        problems = shape_problems({k: getattr(self, k) for k in self.model_fields_set})
        if problems:
            raise problems[0]
        return self

    @property
    def source(self) -> SourceMap | None:
        """Positions of the keys in the file this pipeline was loaded from (None if built in Python)."""
        return self._source

    def step_configs(self) -> list[StepConfig]:
        """The steps, a top-level single step included."""
        if self.steps is not None:
            return list(self.steps)
        if self.kernel is None:  # not reachable for a validated pipeline (see _shape)
            raise ConfigError("the pipeline has neither 'kernel' nor 'steps'")
        return [StepConfig(**{k: getattr(self, k) for k in _STEP_KEYS})]

    def to_steps(self, grid: Grid | None = None) -> list[Step]:
        """The engine's steps, in order (kernels built and validated).

        ``grid`` is the scene's, needed when a kernel size is in map units (:meth:`uses_map_units`):
        those sizes are converted with its pixel size and CRS (:mod:`geomask.units`).
        """
        return [step.to_step(grid) for step in self.step_configs()]

    def uses_map_units(self) -> bool:
        """Whether a kernel size is given in map units, so steps differ from scene to scene."""
        return any(step.kernel.uses_map_units() for step in self.step_configs())

    def unit_notes(self, grid: Grid) -> list[str]:
        """How each kernel size in map units converts on ``grid``, e.g. ``gaussian sigma 30 m = 1 px``."""
        configs = self.step_configs()
        notes = []
        for i, step in enumerate(configs, start=1):
            prefix = f"step {i}: " if len(configs) > 1 else ""
            notes.extend(prefix + note for note in step.kernel.resolve(grid)[1])
        return notes

    def digest(self) -> str:
        """sha256 of the canonical JSON of the pipeline (``output.overwrite`` excluded)."""
        data = self.model_dump(mode="json", exclude={"output": {"overwrite"}})
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def scenes(self) -> list[tuple[Path, Path]]:
        """Every (input, output) pair, inputs in the order given (globs sorted).

        Raises
        ------
        InputError
            A glob matches no file.
        ConfigError
            Two inputs map to the same output, or an output would replace its input.
        """
        inputs: list[Path] = []
        for pattern in self.input:
            if glob.has_magic(pattern):
                matches = sorted(glob.glob(pattern))
                if not matches:
                    raise InputError(f"input: no file matches {pattern!r}: check the pattern")
                inputs.extend(Path(m) for m in matches)
            else:
                inputs.append(Path(pattern))
        pairs: list[tuple[Path, Path]] = []
        seen: dict[Path, Path] = {}
        template = str(self.output.path)
        for scene in dict.fromkeys(inputs):
            out = Path(template.format(stem=scene.stem, name=scene.name, parent=scene.parent.name))
            if out in seen:
                raise ConfigError(
                    f"output.path: {seen[out]} and {scene} would both be written to {out}: "
                    "use {stem} or {name} in output.path"
                )
            if os.path.abspath(out) == os.path.abspath(scene):
                raise ConfigError(f"output.path: {out} is the input itself: choose another output path")
            seen[out] = scene
            pairs.append((scene, out))
        return pairs


# --- run profile ----------------------------------------------------------------------------------


LocalScheduler = Literal["threads", "processes", "synchronous"]
_ADDRESS = r"^(tcp|tls)://[^\s/:]+:[0-9]{1,5}$"


def _scheduler(value: Any) -> str:
    if isinstance(value, str) and (value in get_args(LocalScheduler) or re.fullmatch(_ADDRESS, value)):
        return value
    close = difflib.get_close_matches(value, get_args(LocalScheduler), n=1) if isinstance(value, str) else []
    raise PydanticCustomError(
        "option_scheduler",
        "expected threads, processes, synchronous or a scheduler address tcp://HOST:PORT, got {got}{hint}",
        {"got": show(value), "hint": f". Did you mean {close[0]!r}?" if close else ""},
    )


Scheduler = Annotated[
    str,
    PlainValidator(_scheduler),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(get_args(LocalScheduler))},
                {"type": "string", "pattern": _ADDRESS, "description": "a dask.distributed scheduler"},
            ]
        }
    ),
]
"""threads, processes, synchronous, or a dask.distributed address (accepted, not run yet)."""


class Profile(_Strict):
    """How to run: scheduler, parallelism, window size, GDAL and output creation options.

    ``scheduler`` also accepts a dask.distributed address (``tcp://HOST:PORT``) so cluster profiles
    validate, but running with one is refused until cluster support exists.
    """

    scheduler: Scheduler = Field(
        "threads",
        description="dask scheduler: threads (default), processes, synchronous (debugging), or the "
        "address of a dask.distributed scheduler, tcp://HOST:PORT (not supported yet)",
    )
    workers: Annotated[int, Field(ge=1)] | None = Field(
        None, description="parallel workers (default: all cores)"
    )
    window_size: Annotated[int, Field(ge=16, le=65536)] = Field(
        1024, description="window side in pixels, rounded up to a multiple of the input's block size"
    )
    gdal: dict[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")], GdalValue] = Field(
        default_factory=dict, description="GDAL configuration options, e.g. GDAL_CACHEMAX: 512"
    )
    creation_options: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], GdalValue] = Field(
        default_factory=dict, description="extra GeoTIFF/COG creation options, e.g. BLOCKSIZE: 512"
    )

    def to_options(self, **overrides: Any) -> RunOptions:
        """The engine's :class:`~geomask.engine.RunOptions`; ``overrides`` that are not None win.

        Raises
        ------
        ConfigError
            The scheduler is a distributed scheduler's address (and no ``scheduler`` override
            replaces it): those are not supported yet.
        """
        from geomask.engine import RunOptions

        if overrides.get("scheduler") is None and self.scheduler not in get_args(LocalScheduler):
            raise ConfigError(
                f"scheduler: {self.scheduler}: distributed schedulers are not supported yet; "
                "use threads, processes or synchronous (in the profile, or --scheduler)"
            )
        values: dict[str, Any] = {
            "window_size": self.window_size,
            "scheduler": self.scheduler,
            "workers": self.workers,
            "gdal_options": dict(self.gdal),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return RunOptions(**values)
