"""STAC Items as input: each Item is a product (:class:`~geomask.product.Product`), read with pystac.

:func:`read_products` takes the location of a STAC document: one Item, an ItemCollection (a GeoJSON
FeatureCollection of Items), or a Catalog/Collection (its Items are found by walking its links,
recursively). Each Item becomes one :class:`Product`:

* :attr:`Product.assets` holds **every** GeoTIFF/COG asset of the Item (media type
  ``image/tiff...``, or an href ending in ``.tif``/``.tiff`` when the type is missing), except
  those with a role ``thumbnail``, ``overview``, ``visual`` or ``metadata``; class and QA layers
  (Sentinel-2 ``SCL``, Landsat ``QA_PIXEL``) are in it, so masks and expressions can use them.
* :attr:`Product.bands` holds the assets to filter, by asset key (the ``{asset}`` of output paths).
  With ``assets=[...]`` the names given, each an asset key (``B04``) or an ``eo:bands`` common name
  (``red``), in that order (a name given twice counts once). By default the
  **spectral bands**: every asset of :attr:`Product.assets` that has ``eo:bands`` (or STAC 1.1
  ``bands`` with ``eo:common_name``) and the role ``data`` or no role; when no asset of the Item
  has band metadata, every asset of :attr:`Product.assets` with the role ``data`` or no role. Class
  and QA layers are therefore not filtered unless named (smoothing class codes or bit flags is
  never what one wants).

Hrefs: a relative asset href is resolved against the folder of the Item's JSON file (or of the
ItemCollection / Catalog file that holds it); ``s3://``, ``http(s)://`` and ``/vsi...`` hrefs are kept
as written (GDAL reads them, see :mod:`geomask.urls`). Nothing but the JSON documents is read here:
an unreachable asset href fails when its scene runs.

``Asset.nodata``, ``scale`` and ``offset`` come from ``raster:bands`` (STAC 1.0) or from STAC 1.1
``bands`` / asset-level ``nodata``, ``raster:scale``, ``raster:offset``; ``common_name`` from
``eo:bands`` (1.0) or ``bands[].eo:common_name`` (1.1).

Reading an Item from ``s3://`` is not supported (pystac reads local files and ``http(s)://``);
its assets may be anywhere GDAL reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomask.errors import ConfigError, InputError
from geomask.messages import did_you_mean, plain
from geomask.product import Asset, Product
from geomask.urls import is_url

if TYPE_CHECKING:
    import pystac

__all__ = ["SKIPPED_ROLES", "is_geotiff", "read_item", "read_products"]

SKIPPED_ROLES = frozenset({"thumbnail", "overview", "visual", "metadata"})
"""Asset roles that are never input rasters (previews and side files)."""

_TIFF_SUFFIXES = (".tif", ".tiff")


def is_geotiff(media_type: str | None, href: str) -> bool:
    """Whether an asset is a GeoTIFF/COG: its media type is ``image/tiff...``, or (no type) its href
    ends in ``.tif``/``.tiff`` (the query string of a URL ignored)."""
    if media_type:
        return media_type.split(";", 1)[0].strip().lower() == "image/tiff"
    return href.split("?", 1)[0].lower().endswith(_TIFF_SUFFIXES)


def read_products(
    href: str | os.PathLike[str],
    assets: Sequence[str] | None = None,
    items: Sequence[str] | None = None,
) -> list[Product]:
    """The products of a STAC Item, ItemCollection, Catalog or Collection (see the module docstring).

    Parameters
    ----------
    href : path or URL
        A local JSON file or an ``http(s)://`` URL.
    assets : sequence of str or None
        The assets to filter, by asset key or ``eo:bands`` common name; None: the spectral bands.
    items : sequence of str or None
        Keep only the Items with these ids (in the document's order); None: every Item.

    Returns
    -------
    list of Product
        One per Item, in the document's order (a Catalog's in the order its links are walked).

    Raises
    ------
    InputError
        The document is missing, unreachable or not JSON (``FILE:LINE:COL``), a field geomask reads
        has the wrong type (named by its JSON path), or an Item has no GeoTIFF asset.
    ConfigError
        A name of ``assets`` is neither an asset key nor a common name of an Item (with the closest
        key), an id of ``items`` is not in the document (with the closest id), or ``href`` is an
        ``s3://`` URL.
    """
    import pystac  # here: `geomask --help` and pipelines without STAC input load no pystac

    location = os.fspath(href)
    document = _read_json(location)
    stac_items = _items(pystac, document, location)
    if items is not None:
        found = {item.id for item, _ in stac_items}
        for wanted in items:
            if wanted not in found:
                hint = did_you_mean(wanted, sorted(found))
                raise ConfigError(
                    f"{location}: no Item has the id {wanted!r} "
                    f"({len(found)} Item{'s' * (len(found) != 1)} in the document).{hint}"
                )
        keep = set(items)
        stac_items = [(item, base) for item, base in stac_items if item.id in keep]
    if not stac_items:
        raise InputError(f"{location}: holds no STAC Item")
    return [
        _product(item, base, assets, item_href) for item, base, item_href in _with_hrefs(stac_items, location)
    ]


def read_item(href: str | os.PathLike[str], item_id: str) -> tuple[pystac.Item, str]:
    """The Item ``item_id`` of the STAC document at ``href``, and the location of its JSON (the
    Item's own file when a Catalog links to it, else ``href``). Raises InputError when it is not there.
    """
    import pystac

    location = os.fspath(href)
    for item, base in _items(pystac, _read_json(location), location):
        if item.id == item_id:
            return item, item.get_self_href() or base
    raise InputError(f"{location}: no Item has the id {item_id!r}")


def _with_hrefs(
    stac_items: Iterable[tuple[pystac.Item, str]], location: str
) -> Iterable[tuple[pystac.Item, str, str]]:
    for item, base in stac_items:
        self_href = item.get_self_href()
        yield item, base, self_href if self_href else location


def _read_json(location: str) -> Any:
    """The parsed JSON document at ``location``; InputError (one line) when it cannot be had."""
    if is_url(location):
        if not location.lower().startswith(("http://", "https://")):
            raise ConfigError(
                f"input.stac: {location}: STAC documents are read from local files or http(s):// URLs; "
                "download it, or give its https:// URL (its assets may stay on s3://)"
            )
        import pystac

        try:
            text = pystac.StacIO.default().read_text(location)
        except Exception as e:  # urllib raises URLError, HTTPError, socket errors ...
            raise InputError(f"{location}: cannot be read ({e}); check the URL and the network") from e
    else:
        try:
            text = Path(location).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(
                f"{location}: no such file; check input.stac (relative paths resolve from the YAML)"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{location}: cannot be read ({getattr(e, 'strerror', None) or e})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{location}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from e


def _items(pystac: Any, document: Any, location: str) -> list[tuple[pystac.Item, str]]:
    """Every Item of ``document`` with the location its relative hrefs resolve against."""
    if not isinstance(document, dict):
        raise InputError(f"{location}: expected a STAC Item, ItemCollection or Catalog (a JSON object)")
    kind = document.get("type")
    try:
        if kind == "Feature":
            _check_item(document, location, "")
            return [(pystac.Item.from_dict(document, href=_abs(location), migrate=True), location)]
        if kind == "FeatureCollection":
            features = document.get("features")
            if not isinstance(features, list):
                raise InputError(f"{location}: features: expected a list of STAC Items")
            for i, feature in enumerate(features):
                _check_item(feature, location, f"features[{i}].")
            collection = pystac.ItemCollection.from_dict(document, preserve_dict=True)
            return [(item, location) for item in collection.items]
        if kind in ("Catalog", "Collection"):
            catalog = pystac.read_dict(document, href=_abs(location))
            found = []
            for item in catalog.get_items(recursive=True):
                found.append((item, item.get_self_href() or location))
            return found
    except InputError:
        raise
    except pystac.STACError as e:
        raise InputError(f"{location}: not a valid STAC document ({e})") from e
    except (OSError, ValueError) as e:  # a child link that cannot be read
        raise InputError(f"{location}: a linked STAC document cannot be read ({e})") from e
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"{location}: not a valid STAC document (missing or wrong field {e})") from e
    raise InputError(
        f"{location}: type: expected Feature (an Item), FeatureCollection, Catalog or Collection, "
        f"got {plain(kind)}"
    )


def _abs(location: str) -> str:
    return location if is_url(location) else os.path.abspath(location)


def _check_item(data: Any, location: str, prefix: str) -> None:
    """Check the types of the fields geomask reads, naming a wrong one by its JSON path."""

    def bad(path: str, expected: str, got: Any) -> InputError:
        shown = (
            json.dumps(got)
            if not isinstance(got, (dict, list))
            else type(got).__name__.replace("dict", "object")
        )
        return InputError(f"{location}: {prefix}{path}: expected {expected}, got {shown}")

    if not isinstance(data, dict):
        raise bad("", "a STAC Item (a JSON object)", data)
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise bad("id", "a non-empty string", data.get("id"))
    assets = data.get("assets")
    if not isinstance(assets, dict):
        raise bad("assets", "an object of assets", assets)
    for key, asset in assets.items():
        at = f"assets.{key}"
        if not isinstance(asset, dict):
            raise bad(at, "an asset (an object with href)", asset)
        if not isinstance(asset.get("href"), str) or not asset["href"]:
            raise bad(f"{at}.href", "a non-empty string", asset.get("href"))
        if "type" in asset and not isinstance(asset["type"], str):
            raise bad(f"{at}.type", "a media type string", asset["type"])
        roles = asset.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise bad(f"{at}.roles", "a list of strings", roles)
        for field in ("eo:bands", "raster:bands", "bands"):
            if field not in asset:
                continue
            entries = asset[field]
            if not isinstance(entries, list) or not all(isinstance(b, dict) for b in entries):
                raise bad(f"{at}.{field}", "a list of objects", entries)
            for i, entry in enumerate(entries):
                for name in ("nodata", "scale", "offset", "raster:scale", "raster:offset"):
                    value = entry.get(name)
                    if value is not None and not _number(value) and not (name == "nodata" and _nan(value)):
                        raise bad(f"{at}.{field}[{i}].{name}", "a number", value)
                for name in ("common_name", "eo:common_name", "name"):
                    if name in entry and not isinstance(entry[name], str):
                        raise bad(f"{at}.{field}[{i}].{name}", "a string", entry[name])
        for name in ("nodata", "raster:scale", "raster:offset"):
            value = asset.get(name)
            if value is not None and not _number(value) and not (name == "nodata" and _nan(value)):
                raise bad(f"{at}.{name}", "a number", value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nan(value: Any) -> bool:
    return value in ("nan", "inf", "-inf")  # raster:bands nodata may be these strings


def _first(entries: Any) -> Mapping[str, Any]:
    return entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _asset(stac_asset: pystac.Asset, href: str) -> Asset:
    """geomask's Asset from a STAC asset (band metadata from STAC 1.0 or 1.1 fields)."""
    fields = stac_asset.extra_fields
    eo = _first(fields.get("eo:bands"))
    raster = _first(fields.get("raster:bands"))
    band11 = _first(fields.get("bands"))
    nodata = raster.get("nodata", band11.get("nodata", fields.get("nodata")))
    scale = raster.get("scale", band11.get("raster:scale", fields.get("raster:scale")))
    offset = raster.get("offset", band11.get("raster:offset", fields.get("raster:offset")))
    common = eo.get("common_name", band11.get("eo:common_name", fields.get("eo:common_name")))
    return Asset(
        href=href,
        nodata=_float(nodata),
        scale=_float(scale),
        offset=_float(offset),
        common_name=common,
    )


def _has_band_metadata(stac_asset: pystac.Asset) -> bool:
    fields = stac_asset.extra_fields
    return (
        bool(fields.get("eo:bands"))
        or bool(_first(fields.get("bands")).get("eo:common_name"))
        or bool(fields.get("eo:common_name"))
    )


def _resolve(href: str, base: str) -> str:
    """An asset href made readable from anywhere: URLs and /vsi paths kept, relative paths joined."""
    if is_url(href) or href.startswith("/vsi") or os.path.isabs(href):
        return href
    if is_url(base):
        import pystac

        return pystac.utils.make_absolute_href(href, base)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def _product(item: pystac.Item, base: str, wanted: Sequence[str] | None, item_href: str) -> Product:
    rasters: dict[str, Asset] = {}
    spectral: list[str] = []
    plain_data: list[str] = []
    for key, stac_asset in item.assets.items():
        roles = set(stac_asset.roles or [])
        if roles & SKIPPED_ROLES or not is_geotiff(stac_asset.media_type, stac_asset.href):
            continue
        rasters[key] = _asset(stac_asset, _resolve(stac_asset.href, base))
        if not roles or "data" in roles:
            plain_data.append(key)
            if _has_band_metadata(stac_asset):
                spectral.append(key)
    if not rasters:
        keys = ", ".join(item.assets) or "none"
        raise InputError(
            f"{item_href}: Item {item.id!r} has no GeoTIFF/COG asset (assets: {keys}); geomask reads "
            "assets of media type image/tiff"
        )
    if wanted is None:
        chosen = spectral or plain_data
        if not chosen:
            raise InputError(
                f"{item_href}: Item {item.id!r} has no data asset to filter (GeoTIFF assets: "
                f"{', '.join(rasters)}): name them in input.assets"
            )
        bands = {key: rasters[key] for key in chosen}
    else:
        bands = {}
        for name in wanted:
            key = _find(name, rasters, item, item_href)
            bands[key] = rasters[key]  # by asset key: the {asset} of output paths, the key of output Items
    return Product(id=item.id, bands=bands, assets=rasters, item=item_href)


def _find(name: str, rasters: Mapping[str, Asset], item: pystac.Item, item_href: str) -> str:
    """The asset key of ``name`` (a key, or a common name) among the GeoTIFF assets of ``item``."""
    if name in rasters:
        return name
    by_common = [key for key, asset in rasters.items() if asset.common_name == name]
    if len(by_common) == 1:
        return by_common[0]
    if len(by_common) > 1:
        raise ConfigError(
            f"input.assets: {name!r} is the common name of several assets of Item {item.id!r} "
            f"({', '.join(by_common)}): give the asset key"
        )
    if name in item.assets:
        raise ConfigError(
            f"input.assets: asset {name!r} of Item {item.id!r} is not a GeoTIFF "
            f"(type {item.assets[name].media_type or 'not given'}); geomask filters GeoTIFF/COG assets"
        )
    names = [*rasters, *(a.common_name for a in rasters.values() if a.common_name)]
    hint = did_you_mean(name, names) or did_you_mean(name, list(item.assets))
    choices = ", ".join(
        f"{key} ({asset.common_name})" if asset.common_name else key for key, asset in rasters.items()
    )
    raise ConfigError(
        f"input.assets: Item {item.id!r} ({item_href}) has no asset {name!r}.{hint} "
        f"Its GeoTIFF assets: {choices}"
    )
