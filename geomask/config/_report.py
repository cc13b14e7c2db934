"""Turn pydantic validation errors into ``FILE:LINE:COL: key.path: message`` problems.

Pydantic locations include union tags (``kernel.gaussian.sigma``) that do not appear in the file; they
are dropped by walking the loaded data. Messages are rewritten for the YAML user: what was expected,
what was found (``the boolean false``, ``'010'``), and a did-you-mean for unknown keys, kernel names
and choices.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from geomask import kernels
from geomask.config.yamlsafe import Key, SourceMap, key_text
from geomask.errors import At, Problem
from geomask.messages import did_you_mean

__all__ = ["placeholder_hint", "problems_at", "problems_from", "show"]


def show(value: Any) -> str:
    """Describe a YAML value the way a user wrote it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def placeholder_hint(value: Any) -> str:
    """A hint for ``{stem}`` written unquoted as a whole value, which YAML reads as ``{stem: null}``."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value.values())) is None:
        name = next(iter(value))
        return f' (YAML read {{{name}}} as a mapping: quote the value, e.g. "out/{{{name}}}.tif")'
    return ""


def problems_from(
    error: ValidationError, data: Any, source: SourceMap, model: type[BaseModel]
) -> list[Problem]:
    """One :class:`Problem` per faulty key of ``data`` (its first error), placed with ``source``."""
    problems: dict[Key, Problem] = {}
    for err in error.errors(include_url=False):
        key, present = _data_key(err["loc"], data, err["type"])
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, At):
            key, present = (*key, *cause.key), True
        if err["type"] == "missing" or not present:
            position = source.key_position(key[:-1]) if err["type"] == "missing" else source.key_position(key)
        elif err["type"] == "extra_forbidden" or isinstance(cause, At):
            position = source.key_position(key)
        else:
            position = source.value_position(key)
        message = _message(err, key, model)
        problems.setdefault(key, Problem(source.file, position, key_text(key), message))
    return list(problems.values())


def _data_key(loc: tuple[Any, ...], data: Any, kind: str) -> tuple[Key, bool]:
    """The part of a pydantic location that exists in the data (union tags dropped)."""
    key: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        in_dict = isinstance(current, dict) and part in current
        if in_dict or (isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)):
            current = current[part]
        elif i == len(loc) - 1 and kind == "missing":
            key.append(part)
            return tuple(key), False
        else:
            continue
        key.append(part)
    return tuple(key), True


def _message(err: Any, key: Key, model: type[BaseModel]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    name = key[-1] if key else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, key[:-1])
        if str(name) in allowed:  # valid in another form of this section, not beside these keys
            return (
                f"key '{name}' cannot stand beside the other keys here: it belongs to another form of "
                "this section (one form per mapping; combine masks with all: or any:)"
            )
        hint = did_you_mean(str(name), allowed) or f" Allowed here: {', '.join(allowed)}."
        return f"unknown key '{name}'.{hint}"
    if kind == "missing":
        return f"missing required key '{name}'"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        known = [t.strip("'") for t in re.findall(r"'[^']*'", str(ctx.get("expected_tags")))]
        hint = did_you_mean(tag, known, cutoff=0.6)
        return f"unknown kernel '{tag}'.{hint} Known kernels: {', '.join(kernels.names())}"
    if kind == "union_tag_not_found":
        return "give a kernel as {name: NAME, <parameters>} or {matrix: [[...], ...]}: see `geomask kernels`"
    if kind == "literal_error":
        allowed = [t.strip("'") for t in re.findall(r"'[^']*'", str(ctx.get("expected")))]
        hint = did_you_mean(value, allowed)
        return f"expected one of {', '.join(allowed)}, got {show(value)}.{hint}"
    if kind == "string_type":
        hint = " (YAML reads unquoted true/false as booleans: quote it)" if isinstance(value, bool) else ""
        return f"expected text, got {show(value)}{hint or placeholder_hint(value)}"
    if kind == "bool_type":
        return f"expected true or false, got {show(value)}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?0[0-9]+", value):
            hint = f" (leading zeros are ambiguous: write {int(value)}, or 0o{value.lstrip('+-0')} for octal)"
        elif isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value):
            hint = " (remove the quotes)"
        return f"expected a whole number, got {show(value)}{hint}"
    if kind in ("float_type", "float_parsing"):
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                hint = " (remove the quotes)"
            except ValueError:
                pass
        return f"expected a number, got {show(value)}{hint}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {show(value)}"
    if kind == "list_type":
        return f"expected a list, got {show(value)}"
    message = str(err["msg"])
    message = message[:1].lower() + message[1:]
    return (
        message
        if kind.startswith(("path_", "input_", "nodata_", "option_"))
        else f"{message}, got {show(value)}"
    )


def _allowed_keys(model: type[BaseModel], key: Key) -> list[str]:
    """Keys allowed in the mapping at ``key`` (the union of every model that may sit there)."""
    candidates: list[Any] = [model]
    for part in key:
        nxt: list[Any] = []
        for candidate in candidates:
            for t in _flatten(candidate):
                if isinstance(part, int) and get_origin(t) is list:
                    nxt.extend(get_args(t)[:1])
                elif isinstance(t, type) and issubclass(t, BaseModel):
                    fields = {f.alias or n: f for n, f in t.model_fields.items()}  # YAML names
                    if part in fields:
                        nxt.append(fields[part].annotation)
        candidates = nxt
    keys: set[str] = set()
    for candidate in candidates:
        for t in _flatten(candidate):
            if isinstance(t, type) and issubclass(t, BaseModel):
                keys.update(f.alias or n for n, f in t.model_fields.items())  # as written in YAML
    return sorted(keys)


def _flatten(tp: Any) -> list[Any]:
    """The alternatives of a type: Annotated stripped, unions split, None dropped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _flatten(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(tp) for t in _flatten(arg)]
    if tp is type(None):
        return []
    return [tp]


def problems_at(errors: list[At], source: SourceMap, exclude: Sequence[Problem] = ()) -> list[Problem]:
    """Problems for keyed errors, skipping keys that ``exclude`` already reports."""
    taken = {p.key for p in exclude}
    out = []
    for err in errors:
        text = key_text(err.key)
        if text not in taken:
            out.append(Problem(source.file, source.key_position(err.key), text, str(err)))
            taken.add(text)
    return out
