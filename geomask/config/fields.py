"""Field types shared by the config models: strict base model, paths, nodata, GDAL values, lengths.

Each type is an ``Annotated`` pydantic type with its own validator and JSON Schema, so every model
reads the same YAML the same way and ``geomask schema`` describes it. Paths are resolved against the
``base_dir`` in the validation context (the YAML file's folder, see :mod:`geomask.config.paths`), or
left relative to the working directory when a model is built from Python without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from geomask.config._report import placeholder_hint, show
from geomask.config.paths import resolve
from geomask.spec import Boundary, Compress, Op, OverviewResampling
from geomask.units import Length, looks_like_length, parse_length
from geomask.urls import location

__all__ = [
    "Boundary",
    "Compress",
    "FilePath",
    "Finite",
    "GdalValue",
    "InputPaths",
    "LengthValue",
    "Name",
    "Nodata",
    "Op",
    "OverviewResampling",
    "no_nul",
]


# --- field types ---------------------------------------------------------------------------------


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return Path(base) if base is not None else None


def _resolve(text: str, info: ValidationInfo) -> str:
    return resolve(text, _base_dir(info))


def no_nul(value: str) -> None:
    """Refuse a path with a NUL byte (a validation error at its key)."""
    if "\x00" in value:  # the OS cannot name such a file: os.stat raises ValueError, not OSError
        raise PydanticCustomError("path_nul", "a path cannot contain a NUL byte (\\0)", {})


def _path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError(
            "path_type",
            "expected a file path, got {got}{hint}",
            {"got": show(value), "hint": placeholder_hint(value)},
        )
    no_nul(value)
    return location(_resolve(value, info))  # type: ignore[return-value]  # a URL stays text


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
        no_nul(item)
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


Finite = Annotated[float, Field(allow_inf_nan=False)]


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
