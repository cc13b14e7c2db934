"""Products: scenes made of band files (one GeoTIFF per band), as satellite products are published.

A :class:`Product` is what one ``input:`` entry of a pipeline resolves to when it is not a single
multi-band GeoTIFF: a mapping of band names to files (``input: {bands: {red: B04.tif, ...}}``) or one
STAC Item (``input: {stac: item.json, assets: [red, nir]}``, read with pystac). Each band of
:attr:`Product.bands` is filtered on its own native grid and written to its own output; the other
assets (:attr:`Product.assets`, e.g. a Sentinel-2 ``SCL`` class layer or a Landsat ``QA_PIXEL``
bit-flag layer) can serve as masks (``mask: {raster: {asset: SCL}, values: [8, 9, 10]}``) and as
named bands of expressions (``(nir - red) / (nir + red) > 0.3``).

This module holds only the value types (no I/O): the pipeline layer builds products from the
config (:mod:`geomask.config`) and STAC Items (:mod:`geomask.stac_input`), and the engine runs one
band file at a time as a single-file scene.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Asset", "Product"]


@dataclass(frozen=True)
class Asset:
    """One GeoTIFF of a product.

    Attributes
    ----------
    href : str
        A local path (absolute, or relative paths already resolved against the item file or the
        pipeline's folder) or a GDAL-readable URL (``s3://``, ``https://``, ``/vsi...``).
    band : int
        The 1-based band of the file that holds this asset's values (1 for one-band COGs).
    nodata, scale, offset : float or None
        From STAC ``raster:bands`` when given (``None``: the file's own, or none).
    common_name : str or None
        The ``eo:bands`` common name (``red``, ``nir``, ``swir16`` ...), if any.
    """

    href: str
    band: int = 1
    nodata: float | None = None
    scale: float | None = None
    offset: float | None = None
    common_name: str | None = None


@dataclass(frozen=True)
class Product:
    """A scene made of several GeoTIFFs, each on its own grid (resolution, extent, CRS).

    Attributes
    ----------
    id : str
        The STAC Item id, or for ``input: {bands: ...}`` the name of the folder holding the first
        band file (the ``{id}`` output placeholder).
    bands : mapping of str to Asset
        The assets to filter, by name (asset key or band name), in the order given: each becomes
        one output (the ``{asset}`` output placeholder is its name).
    assets : mapping of str to Asset
        Every GeoTIFF asset of the product (the bands included), by name; masks and expressions may
        refer to any of them. Names by ``eo:bands`` common name resolve here too.
    item : str or None
        The path (or URL) of the STAC Item JSON the product was read from, if any; it counts as a
        source file for provenance and resume.
    """

    id: str
    bands: Mapping[str, Asset]
    assets: Mapping[str, Asset] = field(default_factory=dict)
    item: str | None = None

    def asset(self, name: str) -> Asset:
        """The asset ``name`` (an asset key or a common name); KeyError when there is none."""
        if name in self.assets:
            return self.assets[name]
        if name in self.bands:
            return self.bands[name]
        for asset in (*self.assets.values(), *self.bands.values()):
            if asset.common_name == name:
                return asset
        raise KeyError(name)

    def names(self) -> list[str]:
        """Every name :meth:`asset` resolves: band keys, asset keys, then common names (each once)."""
        found = dict.fromkeys([*self.bands, *self.assets])
        for asset in (*self.bands.values(), *self.assets.values()):
            if asset.common_name:
                found.setdefault(asset.common_name)
        return list(found)
