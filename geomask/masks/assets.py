"""Masks that name a product's bands and assets, resolved for one band file of one product.

A product (:class:`geomask.product.Product`: ``input: {bands: {red: B04.tif, ...}}`` or a STAC
Item) is run one band file at a time, each as a single-file scene on its own grid. Two mask forms
refer to the product rather than to that file:

* an expression on band names, ``(nir - red) / (nir + red) > 0.3``
  (:class:`~geomask.masks.expression.ExpressionSource` parses the names);
* a class raster that is another asset, ``mask: {raster: {asset: SCL}, values: [8, 9, 10]}``
  (:class:`AssetSource`).

:func:`for_band` rewrites the steps of a run for one band of one product: an asset mask becomes
the :class:`~geomask.masks.raster.RasterSource` of the asset's file, and an expression on names a
:class:`NamedExpressionSource`. When bound to the band's grid, every other band of the expression
is sampled at the target pixel's centre by nearest neighbour, with PROJ per pixel when its CRS
differs (:class:`~geomask.masks.raster.NearestSampler`, the class-raster machinery), so a pixel's
value never depends on the window and the tiled result equals the whole-array one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from geomask.bandmath import check_expression
from geomask.errors import ConfigError, InputError, MaskError
from geomask.grid import Grid
from geomask.io import open_scene
from geomask.masks.base import BoundMask, MaskContext, MaskSource
from geomask.masks.expression import BoundExpressionMask, ExpressionSource
from geomask.masks.raster import NearestSampler, RasterSource
from geomask.messages import crs_name, did_you_mean
from geomask.pixels import effective_nodata, valid_pixels
from geomask.product import Asset, Product

__all__ = [
    "AssetSource",
    "BoundNamedExpressionMask",
    "Layer",
    "NamedExpressionSource",
    "for_band",
    "names_read",
]


@dataclass(frozen=True)
class AssetSource(MaskSource):
    """A class raster that is an asset of the product (``raster: {asset: SCL}``), not yet resolved.

    Parameters
    ----------
    asset : str
        The asset key or band name.
    values, range, band
        As for :class:`~geomask.masks.raster.RasterSource` (``band`` 1: the asset's own band).

    Notes
    -----
    :func:`for_band` replaces it by the asset file's :class:`~geomask.masks.raster.RasterSource`;
    binding it directly (a single-file input) is a :class:`~geomask.errors.ConfigError`.
    """

    asset: str
    values: Sequence[float] | None = None
    range: tuple[float, float] | None = None
    band: int = 1
    bits: Sequence[int] | None = None
    bitfield: tuple[int, int, tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        checked = self._source(self.asset, self.band)
        object.__setattr__(self, "values", checked.values)  # as RasterSource keeps them: a tuple
        object.__setattr__(self, "range", checked.range)

    def _source(self, href: str, band: int) -> RasterSource:
        return RasterSource(
            href, values=self.values, range=self.range, band=band, bits=self.bits, bitfield=self.bitfield
        )

    def describe(self) -> str:
        """``raster(asset NAME, values=[..])``."""
        return self._source(self.asset, self.band).describe().replace("raster(", "raster(asset ", 1)

    def bind(self, context: MaskContext) -> BoundMask:
        raise ConfigError(
            f"mask raster: {{asset: {self.asset}}} names an asset of a product, but the input is a single "
            f"file ({context.scene_path}): give the class raster's path, or a product input "
            "(input: {bands: {NAME: FILE, ...}})"
        )

    def resolve(self, product: Product) -> RasterSource:
        """The class raster of this asset in ``product``; ConfigError naming the close names if none."""
        asset = _asset(product, self.asset, f"mask raster: {{asset: {self.asset}}}")
        band = asset.band if self.band == 1 else self.band
        return self._source(asset.href, band)


@dataclass(frozen=True)
class Layer:
    """One band a named expression reads: its name, file, 1-based band and nodata (None: the file's)."""

    name: str
    href: str
    band: int = 1
    nodata: float | None = None


@dataclass(frozen=True)
class NamedExpressionSource(ExpressionSource):
    """An expression on a product's band names, each name bound to a :class:`Layer`.

    Parameters
    ----------
    expression : str
        The condition (see :mod:`geomask.masks.expression`), on the names of ``layers``.
    layers : tuple of Layer
        Every name the expression uses.
    nodata : "auto", a number or None
        The run's nodata rule applied to the other bands: ``auto`` (the layer's nodata, else its
        file's), a number, or None (every pixel is data). The band being filtered uses the scene's
        nodata as the engine resolved it.

    Notes
    -----
    A pixel is not selected where one of its layers is nodata, or where its centre falls outside a
    layer's file.
    """

    layers: tuple[Layer, ...] = ()
    nodata: float | Literal["auto"] | None = "auto"

    def bind(self, context: MaskContext) -> BoundNamedExpressionMask:
        """Read each layer's header and check it can be placed on the scene's grid.

        Raises
        ------
        MaskError
            A layer's file is missing or unreadable, or one of it and the scene has a CRS and the
            other none.
        """
        tree, _, _ = check_expression(self.expression)
        samplers: dict[str, tuple[NearestSampler, float | None]] = {}
        for layer in self.layers:
            text = layer.href
            path = text if "://" in text or text.startswith("/vsi") else os.path.abspath(text)
            try:
                with open_scene(path) as ds:
                    grid = Grid(ds.crs if ds.crs else None, ds.transform, ds.height, ds.width)
                    dtype, file_nodata, count = ds.dtypes[layer.band - 1], ds.nodata, ds.count
            except (InputError, IndexError) as e:
                raise MaskError(f"band {layer.name} of expression {self.expression!r}: {e}") from e
            if layer.band > count:
                raise MaskError(f"band {layer.name}: {path} has {count} bands, not band {layer.band}")
            if (grid.crs is None) != (context.grid.crs is None):
                has, lacks = (path, "the scene") if grid.crs is not None else ("the scene", path)
                raise MaskError(
                    f"band {layer.name} of expression {self.expression!r}: {has} has a CRS "
                    f"({crs_name(grid.crs or context.grid.crs)}) but {lacks} has none, so one cannot be "
                    "placed on the other; georeference it (gdal_edit.py -a_srs EPSG:XXXX)"
                )
            if (
                context.scene_path is not None
                and _same_file(path, context.scene_path)
                and grid == context.grid
            ):
                nodata = context.nodata
            elif self.nodata == "auto":
                nodata = effective_nodata(layer.nodata if layer.nodata is not None else file_nodata, dtype)
            else:
                nodata = None if self.nodata is None else effective_nodata(float(self.nodata), dtype)
            sampler = NearestSampler(path, layer.band, source_grid=grid, target_grid=context.grid)
            sampler.what = f"band {layer.name}"
            samplers[layer.name] = (sampler, nodata)
        return BoundNamedExpressionMask(self.expression, tree, context.grid, samplers)


class BoundNamedExpressionMask(BoundExpressionMask):
    """A named expression on the windows of one band's grid: each name sampled at pixel centres.

    Notes
    -----
    Picklable and thread-safe (:class:`~geomask.masks.raster.NearestSampler` opens its file in each
    call). Memory per window: per name, its values in float64 and two float64 coordinate arrays.
    """

    def __init__(
        self,
        expression: str,
        tree: Any,
        grid: Grid,
        samplers: dict[str, tuple[NearestSampler, float | None]],
    ) -> None:
        super().__init__(expression, tree, (), grid, "", None)
        self.samplers = samplers

    def _values(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.bool_]]:
        values: dict[str, NDArray[np.float64]] = {}
        valid = np.ones((height, width), dtype=bool)
        for name, (sampler, nodata) in self.samplers.items():
            if not (height and width):
                values[name] = np.zeros((height, width))
                continue
            array, inside = sampler.sample(row0, col0, height, width)
            valid &= inside
            ok = valid_pixels(array, nodata)
            if ok is not None:
                valid &= ok
            values[name] = array.astype(np.float64)
        return values, valid


def _asset(product: Product, name: str, what: str) -> Asset:
    try:
        return product.asset(name)
    except KeyError:
        known = product.names()
        raise ConfigError(
            f"{what}: product {product.id} has no band or asset {name!r} (it has {', '.join(known)})."
            f"{did_you_mean(name, known)}"
        ) from None


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _resolve(source: MaskSource, product: Product, nodata: float | Literal["auto"] | None) -> MaskSource:
    if isinstance(source, AssetSource):
        return source.resolve(product)
    if isinstance(source, ExpressionSource) and not isinstance(source, NamedExpressionSource):
        _, bands, used = check_expression(source.expression)
        layers = []
        for name in sorted({*used, *(f"b{b}" for b in bands)}):
            asset = _asset(product, name, f"expression {source.expression!r}")
            layers.append(Layer(name, asset.href, asset.band, asset.nodata))
        return NamedExpressionSource(source.expression, tuple(layers), nodata)
    return source


def _walk(value: Any, product: Product, nodata: float | Literal["auto"] | None) -> Any:
    """``value`` with every mask source in it resolved (dataclasses and tuples rebuilt when changed)."""
    if isinstance(value, (AssetSource, ExpressionSource)):
        return _resolve(value, product, nodata)
    if isinstance(value, tuple):
        items = tuple(_walk(item, product, nodata) for item in value)
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            if not field.init:
                continue
            old = getattr(value, field.name)
            new = _walk(old, product, nodata)
            if new is not old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def names_read(steps: Sequence[Any]) -> frozenset[str]:
    """The band and asset names the product masks of ``steps`` read (before :func:`for_band`)."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, AssetSource):
            names.add(value.asset)
        elif isinstance(value, NamedExpressionSource):
            names.update(layer.name for layer in value.layers)
        elif isinstance(value, ExpressionSource):
            _, bands, used = check_expression(value.expression)
            names.update(used, (f"b{b}" for b in bands))
        elif isinstance(value, tuple):
            for item in value:
                walk(item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                if field.init:
                    walk(getattr(value, field.name))

    for step in steps:
        walk(step)
    return frozenset(names)


def for_band(
    steps: Sequence[Any], product: Product, nodata: float | Literal["auto"] | None = "auto"
) -> list[Any]:
    """The steps of a run, with their product masks resolved for ``product``.

    Parameters
    ----------
    steps : sequence of Step or GroupStep
        The engine's steps (:func:`geomask.config.build.build_steps`).
    product : Product
        The product whose band is run.
    nodata : "auto", a number or None
        The pipeline's nodata rule (for the other bands an expression reads).

    Returns
    -------
    list
        The same steps, each :class:`AssetSource` replaced by its asset's class raster and each
        expression by a :class:`NamedExpressionSource` of the product's files. The steps do not
        depend on which band is filtered: each band binds them to its own grid.

    Raises
    ------
    ConfigError
        An expression or an asset mask names a band or asset the product does not have (the message
        suggests the closest name).
    """
    return [_walk(step, product, nodata) for step in steps]
