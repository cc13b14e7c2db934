"""Output path templates: ``out/{stem}.tif``, with placeholders only, that cannot leave their folder.

A template (``output.path``, ``geomask mask -o``) names one file per input scene with the
placeholders ``{stem}``, ``{name}`` and ``{parent}`` (:func:`geomask.urls.template_fields`). Nothing
else of Python's format language is allowed: no format spec (``{stem:>2000000000}`` would allocate
gigabytes), no conversion (``{stem!r}``), no positional, attribute or index field (``{0}``,
``{stem.x}``, ``{stem[0]}``). A placeholder whose value is empty, ``.``, ``..``, absolute or holds a
path separator is refused, so a template never escapes the folder it names.
"""

from __future__ import annotations

import os
import string

from geomask.errors import ConfigError
from geomask.urls import template_fields

__all__ = ["TEMPLATE_FIELDS", "check_template", "expand_template", "template_fields"]

TEMPLATE_FIELDS = ("stem", "name", "parent")
"""Placeholders allowed in output templates: the input's stem, file name and parent folder name."""

_ALLOWED = "{stem}, {name} or {parent}"


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


def expand_template(text: str, scene: str | os.PathLike[str]) -> str:
    """``text`` with the placeholders of ``scene`` filled in.

    Raises
    ------
    ConfigError
        ``text`` is not a valid template (:func:`check_template`), or a placeholder it uses would be
        empty, ``.``, ``..``, absolute or hold a path separator for this scene.
    """
    used = check_template(text)
    fields = template_fields(scene)
    for name in sorted(used):
        value = fields[name]
        if value in ("", ".", "..") or "/" in value or os.sep in value or os.path.isabs(value):
            shown = f"'{value}'" if value else "empty"
            raise ConfigError(
                f"{{{name}}} of {os.fspath(scene)} is {shown}: a placeholder must be a plain file or folder "
                "name; write that part of the path out instead"
            )
    return text.format(**fields)
