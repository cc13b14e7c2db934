"""Fuzz pipeline values through the real CLI: ``python tests/fuzz_cli.py [--run] [LABEL-FILTER ...]``.

Not part of the test suite (pytest collects ``test_*.py`` only): it takes minutes. For every key of
a few base pipelines (single file with a vector mask, other mask forms and kernels, a product of band
files, fill/dtype steps, kernels_by) it writes the key with extreme values (NaN, inf, 1e308, -1,
2**70, 100 kB strings, NUL, unicode, lists and mappings where scalars go, format specs in
templates), runs ``geomask validate`` and, with ``--run`` and when validate accepts, ``geomask run``
in-process, and prints a ``BAD`` line for an exit code outside 0/1/2, an "unexpected" error, a
traceback, a Python repr (``b'..'``, ``{'a': 1}``, ``<... object at``), a GEOSException, or a
command over 60 s. Its small rasters, vector and the sample S2 product are made in a temporary folder.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from rasterio.transform import from_origin
from typer.testing import CliRunner

from geomask.cli import app

DATA = Path(__file__).resolve().parent.parent / "data"
EXTREMES: list[Any] = [
    float("nan"), float("inf"), -float("inf"), 1e308, -1, 0, 2**70, -(2**70), 1e-320, "x" * 100_000,
    "a\x00b", "ü∂ø🙂", [1, 2], {"a": 1}, None, True, "", "../../etc/passwd", "{stem:>2000000000}", "{0}",
    "{stem!r}", ["red", "red"], "int8", "uint64", "complex64", 0.5,
]  # fmt: skip
SINGLE = {
    "input": "s.tif",
    "bands": [1],
    "nodata": "auto",
    "mask": {"vector": "roi.geojson", "buffer": 10, "all_touched": False, "where": "k = 1"},
    "kernel": {"name": "gaussian", "sigma": 1},
    "boundary": "reflect",
    "cval": 0,
    "normalize": True,
    "output": {"path": "out/{stem}.tif", "format": "GTiff", "compress": "deflate"},
}
BASES: dict[str, tuple[dict[str, Any], list[tuple[Any, ...]]]] = {
    "single": (
        SINGLE,
        [
            ("bands",),
            ("nodata",),
            ("cval",),
            ("boundary",),
            ("normalize",),
            ("input",),
            ("mask", "buffer"),
            ("mask", "where"),
            ("mask", "all_touched"),
            ("mask", "layer"),
            ("mask", "crs"),
            ("mask", "vector"),
            ("kernel", "sigma"),
            ("kernel", "radius"),
            ("kernel", "name"),
            ("output", "path"),
            ("output", "format"),
            ("output", "compress"),
            ("output", "dtype"),
            ("output", "overwrite"),
            ("output", "clip"),
            ("output", "stac"),
        ],
    ),
    "product": (
        {
            "input": {"bands": {"red": "P/B04.tif", "nir": "P/B08.tif", "SCL": "P/SCL.tif"}},
            "bands": ["red"],
            "mask": {
                "all": [
                    {"expression": "(nir - red) / (nir + red) > 0.3"},
                    {"not": {"raster": {"asset": "SCL"}, "values": [8, 9]}},
                ]
            },
            "kernel": {"name": "box", "size": 3},
            "output": {"path": "outp/{id}/{asset}.tif", "format": "GTiff"},
        },
        [("input", "bands", "red"), ("input", "bands"), ("bands",), ("output", "path"), ("mask",)],
    ),
    "fill": (
        {
            "input": "s.tif",
            "validity": "honour",
            "steps": [
                {
                    "mask": {"raster": "cls.tif", "values": [1]},
                    "kernel": {"name": "box", "size": 3},
                    "fill": {"nodata": True, "min_valid": 3},
                }
            ],
            "output": {"path": "outf/{stem}.tif", "dtype": "float32", "clip": False},
        },
        [
            ("validity",),
            ("steps", 0, "fill", "min_valid"),
            ("steps", 0, "fill", "nodata"),
            ("steps", 0, "fill"),
            ("output", "dtype"),
            ("output", "clip"),
            ("steps", 0),
            ("steps",),
        ],
    ),
    "kernels_by": (
        {
            "input": "s.tif",
            "mask": {"raster": "cls.tif", "values": [1, 2]},
            "kernels_by": {"kernels": {"1": {"name": "box"}, "2": {"name": "gaussian", "sigma": 1}}},
            "support": "target",
            "output": {"path": "outk/{stem}.tif"},
        },
        [
            ("kernels_by", "kernels"),
            ("kernels_by", "attribute"),
            ("kernels_by", "kernels", "1"),
            ("support",),
            ("mask", "values"),
        ],
    ),
}
FORMS: dict[tuple[str, ...], list[dict[str, Any]]] = {  # other mask forms and kernels, each key fuzzed
    ("mask",): [
        {"raster": "cls.tif", "values": [1]},
        {"raster": "cls.tif", "range": [1, 2]},
        {"expression": "b1 > 3"},
        {"bbox": [500000, 3999600, 500200, 4000000]},
        {"grow": 2, "mask": {"raster": "cls.tif", "values": [1]}},
        {"raster": "cls.tif", "bits": [0]},
        {"not": {"raster": "cls.tif", "values": [1]}},
    ],
    ("kernel",): [
        {"name": "median", "size": 3},
        {"name": "box", "size": 3},
        {"matrix": [[0, 1, 0], [1, 1, 1], [0, 1, 0]]},
        {"name": "sharpen", "amount": 0.5},
        {"name": "laplacian"},
    ],
}
BAD = re.compile(r"unexpected|Traceback|[ (]b'|\{'|<[a-zA-Z_.]+ object at|GEOSException|\bnot_\b")
runner = CliRunner()


class _Timeout(Exception):
    pass


def _alarm(*_: object) -> None:
    raise _Timeout


def _put(data: dict[str, Any], key: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node: Any = data
    for k in key[:-1]:
        node = node.setdefault(k, {}) if isinstance(node, dict) else node[k]
    node[key[-1]] = value
    return data


def _dump(data: dict[str, Any]) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except Exception:  # a value YAML cannot write: JSON is YAML too
        return json.dumps(data, allow_nan=True)


def _fixtures(folder: Path) -> None:
    transform = from_origin(500000, 4000000, 10, 10)
    common = {"driver": "GTiff", "width": 50, "height": 40, "crs": "EPSG:32633", "transform": transform}
    data = (np.arange(40 * 50 * 2) % 251).astype("uint8").reshape(2, 40, 50)
    with rasterio.open(folder / "s.tif", "w", count=2, dtype="uint8", nodata=0, **common) as ds:
        ds.write(data)
    with rasterio.open(folder / "cls.tif", "w", count=1, dtype="uint8", **common) as ds:
        ds.write((np.arange(40 * 50) % 5).astype("uint8").reshape(1, 40, 50))
    ring = [[500050, 3999950], [500300, 3999950], [500300, 3999700], [500050, 3999700], [500050, 3999950]]
    roi = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"k": 1},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
    (folder / "roi.geojson").write_text(json.dumps(roi))
    shutil.copytree(DATA / "S2", folder / "P")


def _case(folder: Path, data: dict[str, Any], label: str, run: bool) -> int:
    path = folder / "p.yaml"
    path.write_text(_dump(data), encoding="utf-8")
    bad = 0
    for command in (["validate", str(path)], ["run", str(path), "--overwrite", "-q"]):
        if command[0] == "run" and not run:
            break
        signal.alarm(60)
        try:
            result = runner.invoke(app, command, catch_exceptions=True)
        except _Timeout:
            print("BAD", label, command[0], "over 60 s", flush=True)
            return 1
        finally:
            signal.alarm(0)
        stray = result.exception is not None and not isinstance(result.exception, SystemExit)
        if result.exit_code not in (0, 1, 2) or BAD.search(result.output[:3000]) or stray:
            print("BAD", label, command[0], result.exit_code, repr(result.output[:400]), flush=True)
            bad += 1
        if command[0] == "validate" and result.exit_code == 2:
            break  # refused by validate: the run refuses it too (the test suite checks they agree)
    return bad


def main() -> int:
    run = "--run" in sys.argv
    wanted = [a for a in sys.argv[1:] if not a.startswith("--")]
    cases: list[tuple[dict[str, Any], str]] = []
    for name, (base, keys) in BASES.items():
        cases.append((base, f"{name} base"))
        cases += [
            (_put(base, key, v), f"{name}:{'.'.join(map(str, key))}={str(v)[:30]!r}")
            for key in keys
            for v in EXTREMES
        ]
    for key, forms in FORMS.items():
        for form in forms:
            base = _put(SINGLE, key, form)
            for sub in form:
                cases += [
                    (_put(base, (*key, sub), v), f"{key[0]}.{next(iter(form))}/{sub}={str(v)[:30]!r}")
                    for v in EXTREMES
                ]
    signal.signal(signal.SIGALRM, _alarm)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _fixtures(folder)
        for data, label in cases:
            if not wanted or any(w in label for w in wanted):
                bad += _case(folder, data, label, run)
    print(f"{len(cases)} cases, {bad} bad", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":  # the run's process pool re-imports this module: only the parent fuzzes
    sys.exit(main())
