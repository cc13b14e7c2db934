"""Product inputs: ``input: {bands: {red: B04.tif, ...}}``, asset references, and their band outputs.

A pipeline's ``input:`` is either today's path, glob or list of paths (one single-file scene each)
or a *product* form that resolves to :class:`geomask.product.Product` values: ``{bands: {NAME:
FILE, ...}}`` (:class:`BandsInput`, here) or a STAC Item (``{stac: ...}``, whose model has the same
``to_products()`` method). Every selected band of every product is a *band scene*
(:class:`BandScene`): one band file run as a single-file scene on its own grid, written to its own
output, whose path the ``output.path`` template gives with ``{id}`` (the product) and ``{asset}``
(the band's name) besides ``{stem}``, ``{name}`` and ``{parent}`` of the band file.

``raster: {asset: SCL}`` in a class-raster mask is :class:`AssetRef`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from geomask.config._report import show
from geomask.config.fields import no_nul
from geomask.config.paths import resolve
from geomask.errors import At, ConfigError
from geomask.messages import did_you_mean
from geomask.product import Asset, Product
from geomask.templates import expand_template
from geomask.urls import is_url, location, url_parts

if TYPE_CHECKING:
    pass

__all__ = [
    "AssetRef",
    "BandName",
    "BandScene",
    "BandsInput",
    "band_form",
    "band_scenes",
    "input_form",
    "input_problems",
    "is_product_input",
    "products",
    "raster_form",
    "selected",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _band_name(value: Any) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise PydanticCustomError(
            "band_name",
            "band name {got!r} is not a plain name (letters, digits and _, not starting with a digit), "
            "so expressions could not use it",
            {"got": value},
        )
    return value


def _band_path(value: Any, info: ValidationInfo) -> str:
    # As geomask.config.models' FilePath: relative to the pipeline's folder; URLs stay text.
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("path_type", "expected a band file path, got {got}", {"got": show(value)})
    no_nul(value)
    if is_url(value):
        return value
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return resolve(value, Path(base) if base is not None else None)


BandName = Annotated[
    str, PlainValidator(_band_name), WithJsonSchema({"type": "string", "pattern": _NAME.pattern})
]
BandPath = Annotated[
    str,
    PlainValidator(_band_path),
    WithJsonSchema({"type": "string", "description": "a GeoTIFF path, relative to the YAML file"}),
]


class BandsInput(BaseModel):
    """A scene made of band files: ``input: {bands: {red: B04.tif, nir: B08.tif, swir16: B11.tif}}``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    bands: dict[BandName, BandPath] = Field(
        min_length=1,
        description="band name -> GeoTIFF (one band each, any grid), relative to this file; each band is "
        "filtered on its own grid and written to its own output",
    )

    def to_products(self) -> list[Product]:
        """The one product these band files make; its id is the folder name of the first band file."""
        first = next(iter(self.bands.values()))
        folder = url_parts(first).parent if is_url(first) else PurePosixPath(os.path.abspath(first)).parent
        bands = {name: Asset(href) for name, href in self.bands.items()}
        return [Product(folder.name or "product", bands, dict(bands))]


class AssetRef(BaseModel):
    """``raster: {asset: SCL}``: the class raster is an asset (or band) of the product being run."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    asset: Annotated[str, Field(min_length=1)] = Field(description="asset key or band name of the product")


def input_form(value: object) -> str:
    """The union tag of an ``input:`` value: ``stac input`` for a mapping with a ``stac`` key, ``band
    files`` for another mapping, ``input paths`` for a path, a glob or a list. Tags hold a space: they
    are never keys of the data (see :func:`geomask.config._report._data_key`)."""
    from geomask.config.stac_input import StacInput  # here: stac_input needs nothing of this module

    if isinstance(value, StacInput) or (isinstance(value, Mapping) and "stac" in value):
        return "stac input"
    return "band files" if isinstance(value, (Mapping, BandsInput)) else "input paths"


def band_form(value: object) -> str:
    """The tag of one entry of ``bands:``: ``name`` for text (a product's band), else ``number``.

    Quoted digits (``'1'``) are a number, so the message says to remove the quotes.
    """
    return "name" if isinstance(value, str) and not value.strip().isdigit() else "number"


def raster_form(value: object) -> str:
    """The tag of a ``raster:`` value of a class-raster mask: ``asset`` for a mapping, else ``path``."""
    return "asset" if isinstance(value, (Mapping, AssetRef)) else "path"


def input_problems(pipeline: Any) -> list[At]:
    """Problems between ``input`` and ``bands``: names need a product input, numbers a single file."""
    bands = pipeline.bands or []
    named = [b for b in bands if isinstance(b, str)]
    if named and not is_product_input(pipeline.input):
        return [
            At(
                ("bands",),
                f"band names ({', '.join(named)}) need a product input (input: {{bands: {{NAME: FILE, "
                "...}}); a single-file scene's bands are numbers from 1",
            )
        ]
    if isinstance(pipeline.input, BandsInput):
        numbers = [str(b) for b in bands if not isinstance(b, str)]
        if numbers:
            return [
                At(
                    ("bands",),
                    f"bands {', '.join(numbers)} are numbers, but the input names its bands: use "
                    f"{', '.join(pipeline.input.bands)}",
                )
            ]
        unknown = [b for b in named if b not in pipeline.input.bands]
        if unknown:
            known = list(pipeline.input.bands)
            return [
                At(
                    ("bands",),
                    f"input has no band {unknown[0]!r} (its bands are {', '.join(known)})."
                    f"{did_you_mean(unknown[0], known)}",
                )
            ]
    return []


def is_product_input(value: object) -> bool:
    """Whether a pipeline's validated ``input`` is a product form (not paths)."""
    return hasattr(value, "to_products")


def products(pipeline: Any) -> list[Product]:
    """The products of a pipeline whose ``input`` is a product form ([] for paths)."""
    if not is_product_input(pipeline.input):
        return []
    return list(pipeline.input.to_products())


@dataclass(frozen=True)
class BandScene:
    """One band of one product, run as a single-file scene.

    Attributes
    ----------
    product : Product
        The product (its other bands and assets serve masks and expressions).
    name : str
        The band's name (``{asset}``).
    asset : Asset
        Its file and band.
    output : Path or str
        The output path (a URL stays text).
    """

    product: Product
    name: str
    asset: Asset
    output: Path

    @property
    def input(self) -> Path:
        """The band file (a URL stays text)."""
        return location(self.asset.href)  # type: ignore[return-value]

    def files(self, names: Collection[str] | None = None) -> list[str]:
        """The files of the product a run reads, each once: its provenance.

        Every band file, the assets named in ``names`` (the names the masks read; ``None``: every
        asset of the product) and the item JSON. A STAC Item's other assets (bands not filtered,
        QA layers no mask reads) are neither opened nor fingerprinted, so they need not exist.
        """
        assets = list(self.product.assets.values())
        if names is not None:
            assets = []
            for name in names:
                try:
                    assets.append(self.product.asset(name))
                except KeyError:
                    continue  # an unknown name is refused when the masks are resolved
        found = dict.fromkeys(a.href for a in (*self.product.bands.values(), *assets))
        if self.product.item is not None:
            found[self.product.item] = None
        return list(found)


def selected(product: Product, bands: Sequence[int | str] | None) -> list[str]:
    """The names of ``product``'s bands a run filters: ``bands`` (names) or all of them.

    Raises
    ------
    ConfigError
        A name the product does not have (the closest is suggested), or a band number.
    """
    if bands is None:
        return list(product.bands)
    out = []
    for band in bands:
        if not isinstance(band, str):
            raise ConfigError(
                f"bands: {band} is a band number, but product {product.id} names its bands: use "
                f"{', '.join(product.bands)}"
            )
        if band not in product.bands:
            raise ConfigError(
                f"bands: product {product.id} has no band {band!r} (its bands are "
                f"{', '.join(product.bands)}).{did_you_mean(band, list(product.bands))}"
            )
        out.append(band)
    return out


def band_scenes(pipeline: Any, found: Sequence[Product] | None = None) -> list[BandScene]:
    """Every band scene of a product pipeline, in product then band order.

    Parameters
    ----------
    pipeline : Pipeline
        A validated pipeline whose ``input`` is a product form.
    found : sequence of Product or None
        Its products (default: :func:`products`).

    Raises
    ------
    ConfigError
        An unknown band name in ``bands:``, an invalid template, two band scenes with the same
        output, or an output that would replace a band file.
    """
    template = str(pipeline.output.path)
    scenes: list[BandScene] = []
    seen: dict[Path, str] = {}
    for product in products(pipeline) if found is None else found:
        for name in selected(product, pipeline.bands):
            asset = product.bands[name]
            try:
                out = location(expand_template(template, asset.href, {"asset": name, "id": product.id}))
            except ConfigError as e:
                raise ConfigError(f"output.path: {e}") from e
            label = f"band {name} of product {product.id}"
            if out in seen and seen[out] == label:  # the same id twice: no template can tell them apart
                raise ConfigError(
                    f"output.path: two Items of the input have the id {product.id!r}, so their band {name} "
                    f"would both be written to {out}: remove the duplicate Item from the STAC document"
                )
            if out in seen:
                raise ConfigError(
                    f"output.path: {seen[out]} and {label} would both be written to {out}: "
                    "use {asset} (and {id} for several products) in output.path"
                )
            if not is_url(out) and os.path.abspath(out) == os.path.abspath(asset.href):
                raise ConfigError(f"output.path: {out} is the band file itself: choose another output path")
            seen[out] = label
            scenes.append(BandScene(product, name, asset, out))  # type: ignore[arg-type]
    return scenes
