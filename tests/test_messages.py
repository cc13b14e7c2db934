"""geomask.messages: values in messages as a user writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geomask.messages import plain


def test_plain_python_values() -> None:
    assert plain(True) == "true" and plain(None) == "null" and plain(b"b1") == "b1"
    assert plain(Path("a/b.tif")) == "a/b.tif" and plain(3) == "3" and plain(2.50) == "2.5"
    assert plain([1, 2.0, "x"]) == "[1, 2, x]" and plain({"a": False}) == "{a: false}"
    assert plain(float("nan")) == "nan"


def test_plain_numpy_values_are_written_as_python_ones() -> None:
    """numpy scalars and arrays (never a repr such as np.float64(1.0)), numpy being loaded lazily."""
    assert plain(np.float64(1.0)) == "1" and plain(np.float32(0.1)) == "0.1"
    assert plain(np.int64(-7)) == "-7" and plain(np.uint8(255)) == "255"
    assert plain(np.bool_(False)) == "false"
    assert plain(np.array([[1.5, 2.0], [3.0, 4.0]])) == "[[1.5, 2], [3, 4]]"
    assert plain(np.longdouble(2.0)) == "2"
    assert plain((np.int16(1), np.float16(0.5))) == "[1, 0.5]"
