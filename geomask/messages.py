"""How values are written in messages: as a user would write them, never as Python reprs.

:func:`crs_name` names a CRS (``EPSG:32618``, never a 600-character WKT); :func:`plain` writes any
value from a pipeline or a file (``[1, 2.5, 3]``, ``true``, a layer name without ``b'...'``).
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from geomask.threadwarnings import ignored

__all__ = ["crs_name", "crs_problem", "did_you_mean", "name_too_long", "plain"]


def crs_name(crs: object) -> str:
    """A short name for a CRS in messages: ``EPSG:32618`` when it has an authority code, else its name.

    Accepts a pyproj or rasterio CRS or anything ``pyproj.CRS.from_user_input`` takes; never returns
    WKT (a PROJ string is returned as written when that is all there is, cut to 80 characters).
    """
    from pyproj import CRS  # here: validating a pipeline with no CRS in it does not load PROJ (30 ms)

    try:
        parsed = CRS.from_user_input(crs)
    except Exception:  # a name for a message must never fail
        text = str(crs)
        return text if len(text) <= 80 else text[:77] + "..."
    authority = parsed.to_authority(min_confidence=90)
    if authority is not None:
        return f"{authority[0]}:{authority[1]}"
    if parsed.name and parsed.name.lower() != "unknown" and not parsed.name.lower().startswith("unknown"):
        return parsed.name
    with ignored():  # "you will likely lose important projection information"
        text = parsed.to_proj4() or parsed.name or "unnamed CRS"
    return text if len(text) <= 80 else text[:77] + "..."


def crs_problem(error: BaseException) -> str:
    """Why PROJ refused a CRS, without pyproj's wrapping: ``crs not found: EPSG:999999`` rather than
    ``Invalid projection: EPSG:999999: (Internal Proj Error: proj_create: crs not found: ...)``."""
    text = str(error)
    _, found, reason = text.rpartition("proj_create: ")
    reason = reason.rstrip(")").strip() if found else text
    return reason if len(reason) <= 200 else reason[:197] + "..."


def plain(value: Any) -> str:
    """``value`` as a user would write it: text as is, numbers with ``:g``, lists as ``[a, b]``.

    Booleans are ``true``/``false``, None is ``null``, bytes are decoded, paths are their text;
    anything else is ``str(value)``. Never a Python repr (``np.float64(1.0)``, ``b'name'``).
    """
    np = sys.modules.get("numpy")  # a numpy value exists only once numpy is loaded (validate may not)
    if np is not None and isinstance(value, (np.bool_, np.integer, np.floating, np.ndarray)):
        value = value.tolist()  # the Python bool, int or float, or a (nested) list
        value = float(value) if isinstance(value, np.floating) else value  # longdouble stays numpy
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (str, PurePath)):
        return str(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        number = float(value)
        return f"{number:g}" if math.isfinite(number) else str(number)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{plain(k)}: {plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(plain(item) for item in value) + "]"
    return str(value)


def did_you_mean(typed: object, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`` Did you mean X?`` for the choice closest to ``typed``, or "" when there is none.

    Never suggests what was typed: a choice equal to it but for spaces or case is named as such
    (``Did you mean 'gaussian' (without the spaces)?``), and an exact match gives "".
    """
    if not isinstance(typed, str):
        return ""
    options = [str(choice) for choice in choices]
    if typed in options:
        return ""
    for fixed, how in ((typed.strip(), "without the spaces"), (typed.lower(), "in lower case")):
        if fixed in options:
            return f" Did you mean '{fixed}' ({how})?"
    close = difflib.get_close_matches(typed, options, n=1, cutoff=cutoff)
    return f" Did you mean '{close[0]}'?" if close else ""


def name_too_long(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is too long for the file system, or None: ``"file name too long: a name of 300
    bytes, the limit is 255"`` (one component over NAME_MAX) or the whole path over PATH_MAX.

    The OS says ENAMETOOLONG for such paths, which ``os.path.exists`` turns into "missing"; callers
    say this instead of "no such file".
    """
    text = os.fsencode(path)
    folder = os.path.dirname(os.path.abspath(text)) or b"/"
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        name_max = os.pathconf(folder or b"/", "PC_NAME_MAX")
        path_max = os.pathconf(folder or b"/", "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    longest = max((len(part) for part in text.split(b"/")), default=0)
    if longest > name_max:
        return f"file name too long: a name of {longest} bytes, the limit is {name_max}"
    if len(os.path.abspath(text)) >= path_max:
        return f"file name too long: a path of {len(os.path.abspath(text))} bytes, the limit is {path_max}"
    return None
