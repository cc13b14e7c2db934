"""Output path templates: ``out/{stem}.tif``, with placeholders only, that cannot leave their folder.

A template (``output.path``, ``geomask mask -o``) names one file per input scene with the
placeholders ``{stem}``, ``{name}`` and ``{parent}`` (:func:`geomask.urls.template_fields`) and, for
a product input (band files, STAC Items), ``{id}`` (the product) and ``{asset}`` (the band). Nothing
else of Python's format language is allowed: no format spec (``{stem:>2000000000}`` would allocate
gigabytes), no conversion (``{stem!r}``), no positional, attribute or index field (``{0}``,
``{stem.x}``, ``{stem[0]}``). A placeholder whose value is empty, ``.``, ``..``, absolute or holds a
path separator is refused, so a template never escapes the folder it names.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping

from geomask.errors import ConfigError
from geomask.urls import template_fields

__all__ = ["PRODUCT_FIELDS", "TEMPLATE_FIELDS", "check_template", "expand_template", "template_fields"]

TEMPLATE_FIELDS = ("stem", "name", "parent", "asset", "id")
"""Placeholders allowed in output templates: the input's stem, file name and parent folder name; for a
product, the band (or asset) name and the product id."""

PRODUCT_FIELDS = ("asset", "id")
"""The placeholders only a product input fills."""

_ALLOWED = "{stem}, {name} or {parent} (and {asset}, {id} for a product input)"


def check_template(text: str) -> set[str]:
    """The placeholders ``text`` uses; raises :class:`ConfigError` for anything but plain placeholders.

    Parameters
    ----------
    text : str
        The template, e.g. ``out/{stem}.tif`` (``{{`` and ``}}`` are literal braces).

    Returns
    -------
    set of str
        The placeholders used (a subset of :data:`TEMPLATE_FIELDS`).

    Raises
    ------
    ConfigError
        Unbalanced braces, an unknown placeholder, a format spec or a conversion; the one-line message
        names the allowed placeholders.
    """
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        raise ConfigError(
            f"invalid template {text!r} ({e}): use {_ALLOWED}, and double braces {{{{ }}}} for a brace"
        ) from e
    used = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if field not in TEMPLATE_FIELDS:
            raise ConfigError(f"unknown placeholder {shown}: use {_ALLOWED}")
        if spec or conversion:
            raise ConfigError(f"placeholder {shown} has a format spec or conversion: use {_ALLOWED} only")
        used.add(field)
    return used


def expand_template(
    text: str, scene: str | os.PathLike[str], product: Mapping[str, str] | None = None
) -> str:
    """``text`` with the placeholders of ``scene`` filled in.

    Parameters
    ----------
    text : str
        The template.
    scene : path or URL
        The input file (for a product, the band file).
    product : mapping or None
        ``{"asset": ..., "id": ...}`` for a band of a product; None for a single-file scene.

    Raises
    ------
    ConfigError
        ``text`` is not a valid template (:func:`check_template`), uses ``{asset}`` or ``{id}``
        without a product, or a placeholder it uses would be empty, ``.``, ``..``, absolute or hold a
        path separator for this scene.
    """
    used = check_template(text)
    fields = {**template_fields(scene), **(product or {})}
    for name in sorted(used):
        if name not in fields:
            raise ConfigError(
                f"{{{name}}} is only known for a product input (input: {{bands: {{...}}}} or a STAC "
                f"item), not for {os.fspath(scene)}: use {{stem}}, {{name}} or {{parent}}"
            )
        value = fields[name]
        if value in ("", ".", "..") or "/" in value or os.sep in value or os.path.isabs(value):
            shown = f"'{value}'" if value else "empty"
            raise ConfigError(
                f"{{{name}}} of {os.fspath(scene)} is {shown}: a placeholder must be a plain file or folder "
                "name; write that part of the path out instead"
            )
    return text.format(**fields)
