"""STAC Items for products run from STAC input (``input: {stac: ...}`` with ``output.stac: true``).

One output Item per input Item (where :mod:`geomask.stac` writes one Item per output file of a
single-file scene). It is the source Item, cloned, with:

* the **filtered assets** pointing to the new files (href relative to the new Item, media type COG or
  GeoTIFF as written, ``proj:shape``/``proj:transform`` of the new file, and ``file:size`` /
  ``file:checksum`` recomputed where the source asset had them: a sha2-256 multihash);
* **every other asset** keeping its source: a URL stays as it is; a local file gets an href relative
  to the new Item's folder (absolute when the two share nothing but the root folder, or are on other
  drives), so the new Item resolves to the same file;
* the source Item's links dropped, and a ``derived_from`` link to the source Item added (relative for
  a local file, the URL as is for a remote one);
* the processing provenance, with the STAC processing extension (v1.2.0): ``processing:software``
  (``{"geomask": VERSION}``), ``processing:lineage`` (the pipeline's kernels and masks, one line),
  ``processing:datetime`` (when the Item was written); and ``updated`` set to that time.

The Item keeps the source's ``id``, geometry, datetime and other properties (the pixels outside the
masks, and the acquisition, are the source's). It is written as ``ID.json`` in the folder of the
Item's first filtered output (:func:`product_item_path`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomask import __version__
from geomask.errors import OutputError
from geomask.urls import is_url

if TYPE_CHECKING:
    import pystac

    from geomask.product import Product
    from geomask.spec import SceneReport

__all__ = [
    "PROCESSING",
    "build_product_item",
    "product_item_path",
    "write_product_item",
    "write_product_items",
]

PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
"""The STAC processing extension's schema URI (provenance fields ``processing:*``)."""

_FILE_EXT = "https://stac-extensions.github.io/file/"


def product_item_path(item_id: str, outputs: Mapping[str, str | os.PathLike[str]]) -> Path:
    """Where the output Item of ``item_id`` goes: ``ID.json`` in the folder of its first output."""
    first = next(iter(outputs.values()), None)
    if first is None:
        raise ValueError("an output Item needs at least one output file")
    return Path(first).parent / f"{item_id}.json"


def _multihash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "1220" + digest.hexdigest()


def _relative(target: str, folder: Path) -> str:
    """``target`` as seen from ``folder``: URLs unchanged, local paths relative (``./`` kept for siblings)."""
    if is_url(target) or target.startswith("/vsi"):
        return target
    absolute, here = os.path.abspath(target), os.path.abspath(folder)
    try:
        if os.path.commonpath([absolute, here]) in (os.sep, ""):  # nothing in common but the root
            return absolute
        rel = os.path.relpath(absolute, here)
    except ValueError:  # another drive (Windows)
        return absolute
    rel = rel.replace(os.sep, "/")
    return rel if rel.startswith("../") else f"./{rel}"


def build_product_item(
    source: pystac.Item,
    source_href: str,
    outputs: Mapping[str, str | os.PathLike[str]],
    item_path: str | os.PathLike[str],
    *,
    lineage: str = "",
    now: dt.datetime | None = None,
) -> pystac.Item:
    """The output Item of one product (see the module docstring).

    Parameters
    ----------
    source : pystac.Item
        The source Item; its relative asset hrefs resolve against ``source_href``.
    source_href : str
        The path or URL of the source Item's JSON document (the ``derived_from`` target).
    outputs : mapping of str to path
        Asset key -> the finished local output file of that asset.
    item_path : path
        Where the new Item will be written (hrefs are made relative to its folder).
    lineage : str
        ``processing:lineage``: what was done, in one line.
    now : datetime or None
        The processing time (default: now, UTC).

    Returns
    -------
    pystac.Item
        Not yet written (see :func:`write_product_item`).

    Raises
    ------
    KeyError
        A key of ``outputs`` is not an asset of ``source``.
    """
    import pystac
    import rasterio

    folder = Path(item_path).parent
    now = now or dt.datetime.now(dt.timezone.utc)
    item = source.clone()
    item.clear_links()
    base = source_href if is_url(source_href) else os.path.abspath(source_href)
    for key, asset in item.assets.items():
        if key in outputs:
            continue
        absolute = (
            pystac.utils.make_absolute_href(asset.href, base) if not _is_absolute(asset.href) else asset.href
        )
        asset.href = _relative(absolute, folder)
    for key, output in outputs.items():
        asset = item.assets[key]
        path = Path(output)
        with rasterio.open(path) as ds:
            is_cog = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            shape, transform = [ds.height, ds.width], list(ds.transform)[:6]
        asset.href = _relative(str(path), folder)
        asset.media_type = pystac.MediaType.COG if is_cog else pystac.MediaType.GEOTIFF
        if "proj:shape" in asset.extra_fields or "proj:transform" in asset.extra_fields:
            asset.extra_fields["proj:shape"] = shape
            asset.extra_fields["proj:transform"] = transform
        if "file:size" in asset.extra_fields:
            asset.extra_fields["file:size"] = path.stat().st_size
        if "file:checksum" in asset.extra_fields:
            asset.extra_fields["file:checksum"] = _multihash(path)
        asset.extra_fields.pop("alternate", None)  # alternate locations are of the source file
    derived = _relative(source_href, folder) if not is_url(source_href) else source_href
    item.add_link(pystac.Link("derived_from", derived, media_type=pystac.MediaType.JSON, title=source.id))
    stamp = pystac.utils.datetime_to_str(now)
    item.properties["updated"] = stamp
    item.properties["processing:software"] = {"geomask": __version__}
    item.properties["processing:datetime"] = stamp
    if lineage:
        item.properties["processing:lineage"] = lineage
    if PROCESSING not in item.stac_extensions:
        item.stac_extensions.append(PROCESSING)
    return item


def _is_absolute(href: str) -> bool:
    return is_url(href) or href.startswith("/vsi") or os.path.isabs(href)


def write_product_item(item: pystac.Item, path: str | os.PathLike[str]) -> Path:
    """Write ``item`` to ``path`` atomically (hrefs as they are: relative ones stay relative).

    Raises
    ------
    OutputError
        The file cannot be written.
    """
    target = Path(path)
    document: dict[str, Any] = item.to_dict(include_self_link=False, transform_hrefs=False)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write the STAC Item ({e.strerror or e})") from e
    return target


def write_product_items(products: Sequence[Product], reports: Sequence[SceneReport]) -> list[Path]:
    """Write the output Item of every product whose filtered assets all have an output.

    Parameters
    ----------
    products : sequence of Product
        The products of the run (read from STAC: :attr:`Product.item` set).
    reports : sequence of SceneReport
        The run's reports, one per filtered asset (``input`` is the asset's href); a product with a
        failed asset gets no Item (its outputs are incomplete). Skipped (current) outputs count.

    Returns
    -------
    list of Path
        The Items written, in product order.
    """
    from geomask.stac_input import read_item

    by_input = {r.input: r for r in reports}
    written = []
    for product in products:
        if product.item is None:
            continue
        done = {key: by_input.get(asset.href) for key, asset in product.bands.items()}
        if any(r is None or r.status == "failed" or is_url(r.output) for r in done.values()):
            continue
        outputs = {key: r.output for key, r in done.items() if r is not None}
        path = product_item_path(product.id, outputs)
        source, source_href = read_item(product.item, product.id)
        lineage = _lineage(outputs)
        if all(r is not None and r.status == "skipped" for r in done.values()):
            kept = _current_item(path, source, source_href, outputs, lineage)
            if kept:
                continue
        item = build_product_item(source, source_href, outputs, path, lineage=lineage)
        written.append(write_product_item(item, path))
    return written


def _current_item(
    path: Path, source: pystac.Item, source_href: str, outputs: Mapping[str, str], lineage: str
) -> bool:
    """Whether the Item at ``path`` is the one this run would write, but for its processing time.

    For a product whose outputs were all current (skipped): the Item is then left as it is (its
    ``processing:datetime`` stays the time its outputs were made). Any difference (the source Item
    edited, an output file replaced, a missing or unreadable Item) means it is rewritten.
    """
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
        stamp = existing["properties"]["processing:datetime"]
        import pystac

        then = pystac.utils.str_to_datetime(stamp)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    item = build_product_item(source, source_href, outputs, path, lineage=lineage, now=then)
    expected = json.loads(json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False)))
    return bool(expected == existing)


def _lineage(outputs: Mapping[str, str | os.PathLike[str]]) -> str:
    """``KERNEL inside MASK`` from the provenance tags of the first output."""
    import rasterio

    with rasterio.open(next(iter(outputs.values()))) as ds:
        tags = ds.tags()
    kernel, mask = tags.get("GEOMASK_KERNEL", ""), tags.get("GEOMASK_MASK", "")
    return f"geomask: {kernel} inside {mask}" if kernel else ""
