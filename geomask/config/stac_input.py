"""The ``input: {stac: ..., assets: [...], items: [...]}`` form: STAC Items as a pipeline's scenes.

```yaml
input:
  stac: ../data/S2/item.json   # an Item, an ItemCollection/FeatureCollection, or a Catalog/Collection
  assets: [red, nir]           # asset keys or eo:bands common names; default: the spectral bands
  items: null                  # optional list of Item ids to keep
```

Every Item is a product (:class:`~geomask.product.Product`, read by
:func:`geomask.stac_input.read_products`); each selected asset is filtered on its own grid. The model
only checks the shape of the section; the STAC document is read when the scenes are listed
(:meth:`StacInput.products`), so ``geomask validate`` reports a missing document like a missing
input file. This module imports nothing from :mod:`geomask.config.models` (which holds the union
that uses it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from geomask.config._report import show
from geomask.config.fields import no_nul
from geomask.config.files import Source
from geomask.config.paths import resolve
from geomask.config.yamlsafe import SourceMap, key_text
from geomask.errors import ConfigError, InputError, Problem
from geomask.urls import is_url

if TYPE_CHECKING:
    from geomask.product import Product

__all__ = ["StacInput", "stac_problems"]


def _document(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError(
            "path_type",
            "expected the path or URL of a STAC Item, ItemCollection or Catalog, got {got}",
            {"got": show(value)},
        )
    no_nul(value)
    if is_url(value):
        if not value.lower().startswith(("http://", "https://")):
            raise PydanticCustomError(
                "path_type",
                "expected a local STAC file or an http(s):// URL, got {got}: download it, or give its "
                "https:// URL (its assets may stay on s3://)",
                {"got": show(value)},
            )
        return value
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return resolve(value, Path(base) if base is not None else None)


StacDocument = Annotated[
    str,
    PlainValidator(_document),
    WithJsonSchema({"type": "string", "description": "a STAC JSON file (relative to the YAML file) or URL"}),
]
Name = Annotated[str, Field(min_length=1)]


class StacInput(BaseModel):
    """STAC Items as scenes: each Item is a product whose selected assets are filtered one by one."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    stac: Annotated[StacDocument, Source("STAC document")] = Field(
        description="a STAC Item, ItemCollection (FeatureCollection), Catalog or Collection: a JSON file, "
        "relative to this file, or an http(s):// URL"
    )
    assets: list[Name] | None = Field(
        None,
        min_length=1,
        description="assets to filter, by asset key (B04) or eo:bands common name (red); default: the "
        "spectral bands (assets with eo:bands), never class or QA layers such as SCL or QA_PIXEL",
    )
    items: list[Name] | None = Field(None, min_length=1, description="keep only the Items with these ids")

    def products(self) -> list[Product]:
        """The products, one per Item kept (reads the STAC document; see
        :func:`geomask.stac_input.read_products` for what it raises)."""
        from geomask.stac_input import read_products

        return read_products(self.stac, self.assets, self.items)

    def to_products(self) -> list[Product]:
        """The products (see :meth:`products`): what makes this a product input for the pipeline."""
        return self.products()


def stac_problems(section: StacInput, source: SourceMap) -> list[Problem]:
    """What ``geomask validate`` reports about a STAC input: the document read (``input.stac``), the
    ids of ``input.items`` and the names of ``input.assets`` checked against it; [] when all is well.

    The document is read twice (once without the asset selection), so that each problem is placed
    at the key it is about.
    """
    from geomask.stac_input import read_products

    def problem(key: tuple[str, ...], e: Exception) -> list[Problem]:
        message = str(e).removeprefix(f"{key_text(key)}: ")
        where = source.value_position(key) or source.key_position(key)
        return [Problem(source.file, where, key_text(key), message)]

    try:
        read_products(section.stac, None, section.items)
    except ConfigError as e:  # an id of items (an s3:// document is refused by the model)
        return problem(("input", "items"), e)
    except InputError as e:
        return problem(("input", "stac"), e)
    try:
        read_products(section.stac, section.assets, section.items)
    except (ConfigError, InputError) as e:
        return problem(("input", "assets"), e)
    return []
