"""A catalogue of bad inputs, each a real file or YAML made here, each through the real command line.

Every case builds a small project in ``tmp_path`` (a 64 x 48 two-band uint16 scene in UTM 18N, an
ROI in EPSG:4326, a pipeline; see ``_fixtures_cli.make_project``), breaks one thing, runs
``geomask run`` and checks what the user sees:

* the exit code: 2 when the input, pipeline or usage must change, 1 when the run failed;
* stderr is exactly one line ``error: ...`` that names the file or key (``names``) and says what
  to do (``hint``), with no traceback (``--debug`` adds one: checked too);
* nothing at the output path, no ``*.partial`` and no lock file left anywhere in the project.

Most cases run in-process with typer's ``CliRunner`` (the same code path as the console script,
minus the process start); the cases marked ``process=True`` run ``geomask run`` as a real process.
The real bad files copied from rasterio's test data are in ``tests/data`` (see its README).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from _fixtures_cli import SCENE_TRANSFORM, make_project, make_roi, make_scene, mounted_tmpfs, write_yaml
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin
from typer.testing import CliRunner

from geomask.cli import app

DATA = Path(__file__).parent / "data"
CLI = [sys.executable, "-c", "from geomask.cli import main; main()"]
OUTPUT = Path("out") / "scene.denoised.tif"
"""Where the default project writes, relative to its folder."""

runner = CliRunner()


@dataclass(frozen=True)
class Case:
    """One bad input: ``make`` breaks a project in a folder and returns the ``geomask run`` arguments."""

    id: str
    make: Callable[[Path], list[str]]
    code: int
    names: str
    """Text the error line must contain: the file or the key at fault."""
    hint: str
    """Text of the error line that says what to do."""
    process: bool = False
    """Run ``geomask run`` as a real process instead of in-process."""


def _project(folder: Path, **overrides: Any) -> list[str]:
    return [str(make_project(folder, **overrides)), "-q"]


def _text(folder: Path, text: str, *, scene: bool = True) -> list[str]:
    """A pipeline written as raw YAML text (``scene.tif`` and ``roi.geojson`` made beside it)."""
    if scene:
        make_scene(folder / "scene.tif")
        make_roi(folder / "roi.geojson")
    return [str(write_yaml(folder / "pipeline.yaml", text)), "-q"]


_GOOD = "input: scene.tif\nkernel: {name: gaussian, sigma: 1}\noutput: {path: out/scene.denoised.tif}\n"


def _raw_scene(path: Path, data: np.ndarray, **profile: Any) -> Path:
    base: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[-1],
        "height": data.shape[-2],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": "EPSG:32618",
        "transform": SCENE_TRANSFORM,
    }
    base.update(profile)
    with rasterio.open(path, "w", **base) as dst:
        dst.write(data)
    return path


# --- inputs ---------------------------------------------------------------------------------------


def _not_a_raster(folder: Path) -> list[str]:
    (folder / "notes.tif").write_text("these are field notes, not a raster\n")
    return _project(folder, input="notes.tif")


def _truncated(folder: Path) -> list[str]:
    path = folder / "truncated.tif"
    make_scene(path, width=256, height=256, tiled=True)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    return _project(folder, input="truncated.tif")


def _corrupt_tile(folder: Path) -> list[str]:
    shutil.copy(DATA / "corrupt.tif", folder / "corrupt.tif")
    args = _project(folder, input="corrupt.tif", mask=None, kernel={"name": "sharpen", "amount": 0.5})
    return [*args, "--window-size", "512"]


def _absurd_header(folder: Path) -> list[str]:
    """A 16 x 16 tiled GeoTIFF whose ImageWidth/ImageLength are patched to 60000: 60000 x 60000
    pixels claimed by a file of a few hundred bytes."""
    path = folder / "absurd.tif"
    _raw_scene(path, np.ones((1, 16, 16), "uint8"), tiled=True, blockxsize=16, blockysize=16)
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"II*\x00"
    ifd = struct.unpack("<I", raw[4:8])[0]
    for i in range(struct.unpack("<H", raw[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", raw[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = struct.pack("<H", 60000) + b"\0\0" if kind == 3 else struct.pack("<I", 60000)
            raw[entry + 8 : entry + 12] = value
    path.write_bytes(bytes(raw))
    assert len(raw) < 1000
    return _project(folder, input="absurd.tif", mask=None)


def _vrt_named_tif(folder: Path) -> list[str]:
    """A VRT (XML that may point at any file) saved as .tif, pointing at a real GeoTIFF."""
    real = folder / "elsewhere.tif"
    make_scene(real)
    rasterio.shutil.copy(real, folder / "sneaky.vrt", driver="VRT")
    (folder / "sneaky.tif").write_text((folder / "sneaky.vrt").read_text())
    return _project(folder, input="sneaky.tif")


def _png_named_tif(folder: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        _raw_scene(
            folder / "picture.tif", np.zeros((1, 8, 8), "uint8"), driver="PNG", crs=None, transform=None
        )
    with open(folder / "picture.tif", "rb") as f:
        assert f.read(4) == b"\x89PNG"
    return _project(folder, input="picture.tif", mask=None)


def _rotated(folder: Path) -> list[str]:
    shutil.copy(DATA / "rotated.tif", folder / "rotated.tif")
    return _project(folder, input="rotated.tif", mask=None, kernel={"name": "box", "size": 3})


def _complex(folder: Path) -> list[str]:
    _raw_scene(folder / "complex.tif", (np.ones((1, 16, 16)) * (1 + 2j)).astype("complex64"))
    return _project(folder, input="complex.tif", mask=None)


def _no_crs(folder: Path) -> Path:
    path = folder / "nocrs.tif"
    _raw_scene(path, np.ones((1, 48, 64), "uint16"), crs=None, transform=from_origin(0, 48, 1, 1))
    return path


def _no_crs_vector_mask(folder: Path) -> list[str]:
    _no_crs(folder)
    return _project(folder, input="nocrs.tif")


def _no_crs_map_units(folder: Path) -> list[str]:
    _no_crs(folder)
    return _project(folder, input="nocrs.tif", mask=None, kernel={"name": "gaussian", "sigma": "30 m"})


# --- vectors --------------------------------------------------------------------------------------


def _vector_empty(folder: Path) -> list[str]:
    (folder / "empty.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return _project(folder, mask={"vector": "empty.geojson"})


def _vector_unreadable(folder: Path) -> list[str]:
    (folder / "garbled.geojson").write_bytes(b'{"type": "FeatureCollection", "features": [{"type": \x00\xff')
    return _project(folder, mask={"vector": "garbled.geojson"})


def _vector_no_crs(folder: Path) -> list[str]:
    for suffix in ("shp", "shx", "dbf", "cpg"):
        shutil.copy(DATA / f"box.{suffix}", folder / f"box.{suffix}")
    return _project(folder, mask={"vector": "box.shp"})


def _vector_outside_required(folder: Path) -> list[str]:
    make_roi(folder / "far.geojson", box=(1000, 1000, 1010, 1010))
    return _project(folder, mask={"vector": "far.geojson", "require_overlap": True})


def _two_layer_gpkg(folder: Path) -> Path:
    path = folder / "zones.gpkg"
    make_roi(folder / "roi.geojson")
    frame = gpd.read_file(folder / "roi.geojson")
    frame.to_file(path, layer="fields", driver="GPKG")
    frame.to_file(path, layer="forests", driver="GPKG")
    return path


def _vector_multilayer(folder: Path) -> list[str]:
    _two_layer_gpkg(folder)
    return _project(folder, mask={"vector": "zones.gpkg"})


def _vector_unknown_layer(folder: Path) -> list[str]:
    _two_layer_gpkg(folder)
    return _project(folder, mask={"vector": "zones.gpkg", "layer": "lakes"})


def _vector_bad_where(folder: Path) -> list[str]:
    return _project(folder, mask={"vector": "roi.geojson", "where": "landcover = 'forest'"})


RUNAWAY_WHERE = (
    "id IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c WHERE x < 0)"
)


def _vector_runaway_where(folder: Path, time_limit: float = 1.0) -> list[str]:
    """A GeoPackage ROI filtered by a recursive SQLite query that never ends."""
    args = _project(
        folder, mask={"vector": "roi.gpkg", "where": RUNAWAY_WHERE, "where_time_limit": time_limit}
    )
    gpd.read_file(folder / "roi.geojson").to_file(folder / "roi.gpkg", driver="GPKG")
    return args


def _vector_not_vector(folder: Path) -> list[str]:
    make_scene(folder / "raster.gpkg.tif")
    (folder / "zones.gpkg").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    return _project(folder, mask={"vector": "zones.gpkg"})


def _vector_sqlite_not_gpkg(folder: Path) -> list[str]:
    """A real SQLite database, but no GeoPackage tables."""
    with sqlite3.connect(folder / "notes.gpkg") as db:
        db.execute("CREATE TABLE notes (id INTEGER, text TEXT)")
    return _project(folder, mask={"vector": "notes.gpkg"})


def _not_utf8(folder: Path) -> list[str]:
    make_scene(folder / "scene.tif")
    (folder / "pipeline.yaml").write_bytes(
        b"input: \xff\xfe\x00scene.tif\n" + _GOOD.split("\n", 1)[1].encode()
    )
    return [str(folder / "pipeline.yaml"), "-q"]


# --- the catalogue --------------------------------------------------------------------------------

NESTED = "input: scene.tif\nkernel: {name: gaussian, sigma: 1}\noutput: {path: out/x.tif}\nbands: " + (
    "[" * 100 + "1" + "]" * 100 + "\n"
)
BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n" + _GOOD
)
PWNED = "pwned-by-yaml"

CASES = [
    # inputs
    Case(
        "input-missing",
        lambda f: _project(f, input="missing.tif"),
        2,
        "missing.tif",
        "check the input path",
        True,
    ),
    Case(
        "input-glob-matches-nothing",
        lambda f: _project(f, input="nothing/*.tif"),
        2,
        "nothing/*.tif",
        "check",
    ),
    Case("input-not-a-raster", _not_a_raster, 2, "notes.tif", "geomask reads GTiff"),
    Case(
        "input-truncated", _truncated, 1, "truncated.tif: cannot read window rows", "re-create or re-download"
    ),
    Case(
        "input-one-corrupt-tile",
        _corrupt_tile,
        1,
        "corrupt.tif: cannot read window rows ",
        "re-create or re-download",
        True,
    ),
    Case("input-absurd-dimensions", _absurd_header, 2, "absurd.tif", "60000x60000"),
    Case("input-vrt-named-tif", _vrt_named_tif, 2, "sneaky.tif", "geomask reads GTiff", True),
    Case("input-png-named-tif", _png_named_tif, 2, "picture.tif", "geomask reads GTiff"),
    Case("input-rotated", _rotated, 2, "rotated.tif", "gdalwarp"),
    Case("input-complex-dtype", _complex, 2, "complex.tif", "complex"),
    Case("input-no-crs-vector-mask", _no_crs_vector_mask, 2, "roi.geojson", "georeference"),
    Case(
        "input-no-crs-map-units",
        _no_crs_map_units,
        2,
        "kernel 'gaussian': sigma: the scene has no CRS",
        "give it in pixels",
    ),
    Case("band-zero", lambda f: _project(f, bands=[0]), 2, "bands[0]", "greater than or equal to 1"),
    Case("band-beyond-count", lambda f: _project(f, bands=[1, 3]), 2, "band 3", "1..2"),
    Case("band-twice", lambda f: _project(f, bands=[1, 1]), 2, "bands", "twice"),
    # vectors
    Case(
        "input-name-too-long",
        lambda f: _project(f, input="a" * 300 + ".tif"),
        2,
        "file name too long: a name of 304 bytes, the limit is 255",
        "shorten the input path",
    ),
    Case(
        "output-name-too-long",
        lambda f: _project(f, output={"path": "out/" + "a" * 300 + ".tif"}),
        2,
        "file name too long",
        "choose a shorter output path",
    ),
    Case(  # the name fits, its temporary NAME.geomask-PID-RANDOM.partial does not: was exit 1 mid-run,
        # "cannot write in out (File name too long); choose a writable output folder"
        "output-temporary-name-too-long",
        lambda f: _project(f, output={"path": "out/" + "a" * 235 + ".tif"}),
        2,
        "file name too long: a name of 284 bytes, the limit is 255 with the suffix of the temporary files",
        "choose a shorter output path",
    ),
    Case(
        "vector-name-too-long",
        lambda f: _project(f, mask={"vector": "a" * 300 + ".gpkg"}),
        2,
        "file name too long: a name of 305 bytes",
        "shorten the mask's vector: path",
    ),
    Case(
        "vector-missing",
        lambda f: _project(f, mask={"vector": "nope.geojson"}),
        2,
        "nope.geojson",
        "check the mask's vector: path",
    ),
    Case("vector-empty", _vector_empty, 2, "empty.geojson", "add"),
    Case("vector-unreadable", _vector_unreadable, 2, "garbled.geojson", "check the file"),
    Case("vector-not-a-geopackage", _vector_not_vector, 2, "zones.gpkg", "check the file"),
    Case("vector-sqlite-not-geopackage", _vector_sqlite_not_gpkg, 2, "notes.gpkg", "check the file"),
    Case("vector-no-crs", _vector_no_crs, 2, "box.shp", "add crs: EPSG:"),
    Case(
        "vector-outside-require-overlap",
        _vector_outside_required,
        2,
        "far.geojson",
        "check the file, its CRS and layer, or set require_overlap: false",
    ),
    Case(
        "vector-multilayer-without-layer",
        _vector_multilayer,
        2,
        "zones.gpkg",
        "has 2 layers (fields, forests); choose one with layer:",
    ),
    Case(
        "vector-unknown-layer",
        _vector_unknown_layer,
        2,
        "no layer lakes",
        "its layers are fields, forests",
    ),
    Case(
        "vector-where-unknown-field",
        _vector_bad_where,
        2,
        "where: landcover = 'forest' is not a valid filter for layer roi of vector file",
        "its fields are id",
    ),
    Case(
        "vector-where-runaway",
        _vector_runaway_where,
        2,
        "roi.gpkg with where: id IN (WITH RECURSIVE",
        "did not finish within 1 s and was stopped",
    ),
    Case(
        "vector-crs-invalid",
        lambda f: _project(f, mask={"vector": "roi.geojson", "crs": "EPSG:999999"}),
        2,
        "crs: EPSG:999999 given for vector file",
        "not a valid CRS",
    ),
    # kernels
    Case(
        "kernel-even", lambda f: _project(f, kernel={"matrix": [[1, 1], [1, 1]]}), 2, "kernel", "must be odd"
    ),
    Case(
        "kernel-non-square-even-side",
        lambda f: _project(f, kernel={"matrix": [[1, 1, 1, 1]] * 3}),
        2,
        "kernel",
        "must be odd",
    ),
    Case(
        "kernel-ragged",
        lambda f: _project(f, kernel={"matrix": [[1, 1, 1], [1, 1], [1, 1, 1]]}),
        2,
        "kernel",
        "rectangular",
    ),
    Case("kernel-empty", lambda f: _project(f, kernel={"matrix": []}), 2, "kernel.matrix", "at least 1 item"),
    Case(
        "kernel-nan",
        lambda f: _text(
            f,
            "input: scene.tif\nkernel: {matrix: [[0, 0, 0], [0, .nan, 0], [0, 0, 0]]}\n"
            "output: {path: out/scene.denoised.tif}\n",
        ),
        2,
        "kernel",
        "finite",
    ),
    Case(
        "kernel-inf",
        lambda f: _text(
            f, "input: scene.tif\nkernel: {matrix: [[.inf]]}\noutput: {path: out/scene.denoised.tif}\n"
        ),
        2,
        "kernel",
        "finite",
    ),
    Case(
        "kernel-larger-than-scene",
        lambda f: _project(f, kernel={"name": "median", "size": 51}),
        2,
        "51x51",
        "use a smaller kernel",
    ),
    Case(
        "kernel-unknown-name",
        lambda f: _project(f, kernel={"name": "gausian", "sigma": 1}),
        2,
        "gausian",
        "Did you mean 'gaussian'?",
    ),
    Case(
        "kernel-sigma-zero", lambda f: _project(f, kernel={"name": "gaussian", "sigma": 0}), 2, "sigma", "> 0"
    ),
    Case(
        "kernel-sigma-negative",
        lambda f: _project(f, kernel={"name": "gaussian", "sigma": -2}),
        2,
        "sigma",
        "> 0",
    ),
    # numeric extremes: each refused from its parameters, before any weight is computed
    Case(
        "kernel-sigma-tiny",
        lambda f: _text(f, _GOOD.replace("sigma: 1", "sigma: 1e-300")),
        2,
        "sigma",
        "at least 0.01",
    ),
    Case(
        "kernel-sigma-huge",
        lambda f: _text(f, _GOOD.replace("sigma: 1", "sigma: 1e300")),
        2,
        "sigma",
        "use sigma <= 333.333",
    ),
    Case(
        "kernel-sigma-largest-float",
        lambda f: _text(f, _GOOD.replace("sigma: 1", "sigma: 1.7976931348623157e308")),
        2,
        "sigma",
        "over the limit of 2001",
    ),
    Case(
        "kernel-sigma-3000",
        lambda f: _project(f, kernel={"name": "gaussian", "sigma": 3000}),
        2,
        "18001 pixels",
        "use sigma <= 333.333",
    ),
    Case(
        "kernel-sigma-huge-map-units",
        lambda f: _project(f, kernel={"name": "gaussian", "sigma": "1e300 km"}),
        2,
        "sigma",
        "over the limit of 2001",
    ),
    Case(
        "kernel-size-beyond-int64",
        lambda f: _text(f, _GOOD.replace("gaussian, sigma: 1", "box, size: 1000000000000000000000000000001")),
        2,
        "size about 10^30",
        "give size <= 2001",
    ),
    Case(
        "kernel-radius-beyond-int64",
        lambda f: _text(f, _GOOD.replace("sigma: 1", "sigma: 1, radius: 100000000000000000000000000000")),
        2,
        "radius about 10^29",
        "give radius <= 1000",
    ),
    Case(
        "kernel-sharpen-amount-overflows",
        lambda f: _project(f, kernel={"name": "sharpen", "amount": 1e308}),
        2,
        "amount",
        "finite number below 1e307",
    ),
    Case(
        "kernel-unknown-parameter",
        lambda f: _project(f, kernel={"name": "gaussian", "sgma": 1}),
        2,
        "sgma",
        "sigma",
    ),
    Case(
        "kernel-zero-sum-with-nodata",
        lambda f: _project(f, kernel={"name": "laplacian"}),
        2,
        "laplacian",
        "normalize: false",
    ),
    # YAML
    Case(
        "yaml-unknown-key", lambda f: _text(f, _GOOD + "kernal: {name: box}\n"), 2, "kernal", "Did you mean"
    ),
    Case(
        "yaml-misspelled-nested-key",
        lambda f: _project(f, mask={"vectr": "roi.geojson"}),
        2,
        "vectr",
        "vector",
    ),
    Case("yaml-wrong-type", lambda f: _text(f, _GOOD + "bands: one\n"), 2, "bands", "expected"),
    Case(
        "yaml-wrong-type-boolean",
        lambda f: _text(f, _GOOD.replace("denoised.tif}", "denoised.tif, overwrite: 'yes'}")),
        2,
        "output.overwrite",
        "expected true or false",
    ),
    Case("yaml-missing-input", lambda f: _project(f, input=None), 2, "input", "required"),
    Case("yaml-missing-output", lambda f: _project(f, output=None), 2, "output", "required"),
    Case(
        "yaml-syntax-error",
        lambda f: _text(f, "input: scene.tif\nkernel: {name: gaussian, sigma: 1\noutput: {path: x.tif}\n"),
        2,
        "pipeline.yaml:3:",
        "YAML",
    ),
    Case("yaml-empty", lambda f: _text(f, ""), 2, "pipeline.yaml", "empty"),
    Case("yaml-only-comments", lambda f: _text(f, "# nothing here yet\n"), 2, "pipeline.yaml", "empty"),
    Case("yaml-not-a-mapping", lambda f: _text(f, "- scene.tif\n- out.tif\n"), 2, "pipeline.yaml", "mapping"),
    Case(
        "yaml-python-tag",
        lambda f: _text(
            f, f"input: !!python/object/apply:os.system ['touch {PWNED}']\n" + _GOOD.split("\n", 1)[1]
        ),
        2,
        "!!python/object/apply:os.system",
        "tag",
        True,
    ),
    Case(
        "yaml-python-name-tag",
        lambda f: _text(f, _GOOD + "nodata: !!python/name:os.system\n"),
        2,
        "!!python/name:os.system",
        "tag",
    ),
    Case(
        "yaml-duplicate-key",
        lambda f: _text(f, _GOOD + "kernel: {name: box, size: 3}\n"),
        2,
        "pipeline.yaml:4:1: kernel",
        "duplicate",
    ),
    Case("yaml-alias-bomb", lambda f: _text(f, BOMB), 2, "pipeline.yaml", "alias"),
    Case("yaml-absurd-nesting", lambda f: _text(f, NESTED), 2, "pipeline.yaml", "nest"),
    Case("yaml-not-utf8", _not_utf8, 2, "pipeline.yaml", "UTF-8"),
    Case("yaml-octal-looking-number", lambda f: _text(f, _GOOD + "nodata: 010\n"), 2, "nodata", "number"),
    Case("pipeline-file-missing", lambda f: [str(f / "nowhere.yaml")], 2, "nowhere.yaml", "check"),
    Case(
        "expression-reaches-python",
        lambda f: _project(f, mask={"expression": f"__import__('os').system('touch {PWNED}') > 0"}),
        2,
        "__import__",
        "b1",
    ),
    Case(
        "expression-attribute-access",
        lambda f: _project(f, mask={"expression": "b1.__class__.__bases__ > 0"}),
        2,
        "__class__",
        "b1",
    ),
    # outputs
    Case(
        "output-is-input",
        lambda f: _project(f, output={"path": "scene.tif"}),
        2,
        "output.path",
        "is the input itself: choose another output path",
    ),
    Case(
        "output-path-is-a-directory",
        lambda f: (
            [*_project(f, output={"path": "out"}), "--overwrite"] if (f / "out").mkdir() is None else []
        ),
        1,
        "out",
        "give a file name",
    ),
    Case(
        "output-parent-is-a-file",
        lambda f: (
            _project(f, output={"path": "blocker/scene.tif"}) if (f / "blocker").write_text("x") else []
        ),
        1,
        "blocker",
        "output",
    ),
    Case(
        "output-template-unknown-field",
        lambda f: _project(f, output={"path": "out/{stem}_{date}.tif"}),
        2,
        "{date}",
        "stem",
    ),
    Case(
        "output-path-nul-byte",
        lambda f: _project(f, output={"path": "out/a\x00b.tif"}),
        2,
        "output.path",
        "cannot contain a NUL byte",
    ),
    Case(
        "band-file-nul-byte",
        lambda f: _project(f, input={"bands": {"red": "scene\x00.tif"}}),
        2,
        "input.bands.red",
        "cannot contain a NUL byte",
    ),
    Case(
        "stac-document-nul-byte",
        lambda f: _project(f, input={"stac": "item\x00.json"}),
        2,
        "input.stac",
        "cannot contain a NUL byte",
    ),
    Case(
        "band-file-a-mapping",
        lambda f: _project(f, input={"bands": {"red": {"a": 1}}}),
        2,
        "input.bands.red",
        "got a mapping",
    ),
    Case(
        "output-unknown-compression",
        lambda f: _project(f, output={"path": "out/x.tif", "compress": "zip"}),
        2,
        "output.compress",
        "deflate",
    ),
    # the run
    Case(
        "scheduler-unreachable",
        lambda f: [*_project(f), "--scheduler", "tcp://127.0.0.1:1"],
        1,
        "tcp://127.0.0.1:1",
        "start it",
        True,
    ),
    Case(
        "profile-unknown-key",
        lambda f: [*_project(f), "--profile", str(write_yaml(f / "prof.yaml", "workrs: 2\n"))],
        2,
        "workrs",
        "workers",
    ),
]


def _leftovers(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.name.endswith((".partial", ".geomask.lock")) or p.name == PWNED
    )


def _invoke(args: list[str], process: bool, cwd: Path) -> tuple[int, str, str]:
    if process:
        done = subprocess.run(
            [*CLI, "run", *args], capture_output=True, text=True, check=False, timeout=120, cwd=cwd
        )
        return done.returncode, done.stdout, done.stderr
    result = runner.invoke(app, ["run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_catalogue_is_large_and_distinct() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a `touch` reaching a shell would land here
    args = case.make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.tif") if p.is_file()}
    code, out, err = _invoke(args, case.process, tmp_path)
    assert code == case.code, (out, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err + out
    assert case.names in err, err
    assert case.hint in err, err
    assert not (tmp_path / OUTPUT).exists() or case.id == "output-path-is-a-directory"
    assert _leftovers(tmp_path) == []
    # inputs (and a file at the output path) are never touched
    assert {p: p.read_bytes() for p in before} == before
    if not case.process:  # --debug adds the traceback above the same line
        code, _out, err = _invoke([*args, "--debug"], False, tmp_path)
        assert code == case.code
        assert "Traceback (most recent call last)" in err
        assert err.splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.slow
def test_signal_during_a_runaway_where_stops_within_two_seconds(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    import psutil

    args = _vector_runaway_where(tmp_path, time_limit=600)
    proc = subprocess.Popen(
        [*CLI, "run", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)  # the where: runs in a child: wait until it does
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert took < 2.0
    assert err.count("\n") == 1 and err.startswith("error: interrupted by"), err
    assert _leftovers(tmp_path) == []


# --- the good side of the same rules -------------------------------------------------------------


def test_polygons_outside_the_scene_warn_and_pass_through(tmp_path: Path) -> None:
    make_roi(tmp_path / "far.geojson", box=(1000, 1000, 1010, 1010))
    args = _project(tmp_path, mask={"vector": "far.geojson"})
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: ") and result.stderr.count("\n") == 1
    assert "far.geojson" in result.stderr
    assert "0 pixels selected, 0 changed" in result.stdout
    with rasterio.open(tmp_path / "scene.tif") as src, rasterio.open(tmp_path / OUTPUT) as dst:
        assert np.array_equal(src.read(), dst.read())


def test_raster_without_crs_is_fine_in_pixel_space(tmp_path: Path) -> None:
    """No CRS: a whole-scene kernel in pixels, or a bbox in pixel space, runs (exit 0)."""
    _no_crs(tmp_path)
    args = _project(tmp_path, input="nocrs.tif", mask=None, kernel={"name": "sharpen"})
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 0, result.stderr
    with rasterio.open(tmp_path / OUTPUT) as dst:
        assert dst.crs is None


def test_missing_output_directory_is_created(tmp_path: Path) -> None:
    args = _project(tmp_path, output={"path": "new/deeper/x.tif"})
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "new" / "deeper" / "x.tif").is_file()


def test_output_exists_without_overwrite(tmp_path: Path) -> None:
    """A file geomask did not write at the output path: exit 2, untouched; --overwrite replaces it."""
    args = _project(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / OUTPUT).write_bytes(b"someone's results")
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and str(tmp_path / OUTPUT) in result.stderr
    assert "pass --overwrite" in result.stderr
    assert (tmp_path / OUTPUT).read_bytes() == b"someone's results"
    assert runner.invoke(app, ["run", *args, "--overwrite"]).exit_code == 0
    assert (tmp_path / OUTPUT).read_bytes() != b"someone's results"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a read-only file system (a tmpfs mounted ro): even root cannot write there."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    with mounted_tmpfs(folder, "ro,size=64k", "a read-only tmpfs") as mounted:
        yield mounted


def test_output_directory_not_writable_fails_before_any_work(
    tmp_path: Path, read_only_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geomask.executors.local

    computed = []
    real = geomask.executors.local.compute_window
    monkeypatch.setattr(geomask.executors.local, "compute_window", lambda *a: computed.append(a) or real(*a))
    args = _project(tmp_path, output={"path": str(read_only_dir / "x.tif")})
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(read_only_dir) in result.stderr and "must be writable" in result.stderr
    assert computed == []
    assert list(read_only_dir.iterdir()) == []


def test_corrupt_tile_error_names_the_window_that_reads_it(tmp_path: Path) -> None:
    """tests/data/corrupt.tif: only its tile rows/cols 512..1023 is corrupt; the window named (any of
    the four windows of 512 whose halo reads that tile may fail first) must include it."""
    args = _corrupt_tile(tmp_path)
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 1
    found = re.search(
        r"corrupt\.tif: cannot read window rows (\d+)\.\.(\d+), cols (\d+)\.\.(\d+) ", result.stderr
    )
    assert found, result.stderr
    r0, r1, c0, c1 = map(int, found.groups())
    assert r0 <= 1023 and r1 >= 512 and c0 <= 1023 and c1 >= 512
    assert "IReadBlock failed at X offset 1, Y offset 1" in result.stderr  # GDAL's block (1, 1)


def test_nothing_reached_a_shell(tmp_path: Path) -> None:
    """The tag and expression cases above would have created this file in their folder; also check here."""
    assert not (Path.cwd() / PWNED).exists()
