"""Tests of masked nodata fill (``fill: {nodata: true, min_valid: N}``) against a direct numpy loop."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_cli import make_project, write_yaml
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine import assert_bits_equal
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app
from geomask.errors import ConfigError
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

runner = CliRunner()
EPS = np.finfo(np.float64).eps


def oracle(
    scene: np.ndarray, weights: np.ndarray, kind: str, mask: np.ndarray, nodata: float | None, min_valid: int
) -> np.ndarray:
    """Fill every nodata/NaN pixel of ``mask`` pixel by pixel (reflect boundary, correlation order)."""
    kh, kw = weights.shape
    ry, rx = kh // 2, kw // 2
    out = scene.copy()
    for b in range(scene.shape[0]):
        band = scene[b].astype(np.float64)
        bad = np.isnan(band) | (band == nodata if nodata is not None else False)
        padded = np.pad(band, ((ry, ry), (rx, rx)), mode="symmetric")
        pbad = np.pad(bad, ((ry, ry), (rx, rx)), mode="symmetric")
        for i, j in zip(*np.nonzero(mask & bad), strict=True):
            cells, ws = [], []
            for a in range(kh):
                for c in range(kw):
                    w = weights[a, c]
                    if (abs(w) <= EPS if kind == "linear" else w == 0) or pbad[i + a, j + c]:
                        continue
                    cells.append(padded[i + a, j + c])
                    ws.append(w)
            if len(cells) < min_valid:
                continue
            if kind == "linear":
                t, den = 0.0, 0.0
                for v, w in zip(cells, ws, strict=True):
                    t += v * w
                    den += w
                full = float(sum(w for w in weights.ravel() if abs(w) > EPS))
                if den == 0:
                    continue
                value = t * (full / den)
            elif kind == "median":
                s = sorted(cells)
                k = len(s) // 2
                value = s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2.0
            else:
                value = min(cells) if kind == "minimum" else max(cells)
            if out.dtype.kind in "iu":
                info = np.iinfo(out.dtype)
                value = np.clip(np.rint(value), info.min, info.max)
            out[b, i, j] = value
    return out


def _scene(seed: int, dtype: str, shape: tuple[int, int] = (31, 27)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scene = (rng.random((2, *shape)) * 3000 + 1).astype(dtype)
    holes = np.zeros(shape, dtype=bool)
    for _ in range(6):  # blocky holes of 1..6 pixels a side, some at the edges
        r, c, h, w = rng.integers(0, shape[0]), rng.integers(0, shape[1]), *rng.integers(1, 7, size=2)
        holes[r : r + h, c : c + w] = True
    holes |= rng.random(shape) < 0.05
    scene[:, holes] = np.nan if np.dtype(dtype).kind == "f" else 0
    return scene, rng.random(shape) < 0.8


def _run(src: Path, steps: list[Step], window: int) -> np.ndarray:
    out = src.with_name(f"{src.stem}.{window}.out.tif")
    options = RunOptions(window_size=window, align_windows=False, workers=2)
    process_scene(src, OutputSpec(out, overwrite=True), steps, options=options)
    with rasterio.open(out) as ds:
        return ds.read()


ASYM = np.array([[1.0, 2.0, 0.0], [0.5, 1.0, 3.0], [0.0, 1.0, 0.25]])


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 500),
    window=st.integers(2, 40),
    dtype=st.sampled_from(["uint16", "float32"]),
    kind=st.sampled_from(["gaussian", "matrix", "median", "minimum", "maximum"]),
    min_valid=st.integers(1, 6),
)
def test_tiled_fill_equals_numpy_oracle(
    seed: int, window: int, dtype: str, kind: str, min_valid: int
) -> None:
    scene, mask = _scene(seed, dtype)
    if kind == "gaussian":
        kernel = kernels.get("gaussian", sigma=1.0)
    elif kind == "matrix":
        kernel = kernels.as_kernel(ASYM)
    else:
        kernel = kernels.get(kind, size=3)
    weights, oracle_kind = np.asarray(kernel.weights, dtype=np.float64), kernel.kind
    nodata = 0.0 if dtype == "uint16" else None
    with tempfile.TemporaryDirectory() as tmp:
        src = write_raster(Path(tmp) / "s.tif", scene, nodata=nodata)
        got = _run(src, [Step(kernel, ArraySource(mask), op="correlate", fill=min_valid)], window)
    assert_bits_equal(got, oracle(scene, weights, oracle_kind, mask, nodata, min_valid))


def test_only_nodata_pixels_inside_the_mask_change(tmp_path: Path) -> None:
    scene, mask = _scene(7, "uint16")
    src = write_raster(tmp_path / "s.tif", scene, nodata=0)
    got = _run(src, [Step(kernels.get("box", size=3), ArraySource(mask), fill=3)], 16)
    holes = scene == 0
    changed = got != scene
    assert changed.any()
    assert not changed[:, ~mask].any()  # outside the mask
    assert not changed[~holes].any()  # valid pixels keep their values
    assert ((got == 0) & holes).any()  # holes deeper than the kernel stay nodata


def test_repeated_fills_grow_into_larger_holes(tmp_path: Path) -> None:
    scene = np.full((1, 20, 20), 100.0, dtype=np.float32)
    scene[0, :, :10] = np.arange(10, dtype=np.float32)  # a ramp, so the fill has something to average
    scene[0, 5:15, 5:15] = np.nan  # a 10 x 10 hole
    everywhere = np.ones((20, 20), dtype=bool)
    src = write_raster(tmp_path / "s.tif", scene)
    k = kernels.get("box", size=3)
    steps = [Step(k, ArraySource(everywhere), fill=1) for _ in range(3)]
    got = _run(src, steps, 7)
    expected = scene
    for _ in range(3):
        expected = oracle(expected, np.asarray(k.weights), "linear", everywhere, None, 1)
    assert_bits_equal(got, expected)
    assert np.isnan(got[0, 8:12, 8:12]).all() and not np.isnan(got[0, 5:8, 5:15]).any()


def test_min_valid_beyond_the_footprint_is_refused(tmp_path: Path) -> None:
    scene, _ = _scene(1, "uint16")
    src = write_raster(tmp_path / "s.tif", scene, nodata=0)
    with pytest.raises(ConfigError, match=r"min_valid must be a whole number from 1 to 9"):
        _run(src, [Step(kernels.get("box", size=3), fill=10)], 16)


def test_pipeline_fill_key(tmp_path: Path) -> None:
    path = make_project(tmp_path, fill={"nodata": True, "min_valid": 3})
    result = runner.invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "out" / "scene.denoised.tif") as ds:
        assert "fill nodata, min_valid 3" in ds.tags()["GEOMASK_KERNEL"]
    bad = write_yaml(
        tmp_path / "bad.yaml",
        "input: scene.tif\nmask: {raster: scene.tif, values: [1]}\n"
        "kernels_by: {kernels: {'1': {name: box}}}\nfill: {nodata: true}\noutput: {path: out/x.tif}\n",
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "fill works with one kernel" in result.stdout
    big = make_project(tmp_path, fill={"nodata": True, "min_valid": 99})
    result = runner.invoke(app, ["validate", str(big)])
    assert result.exit_code == 2 and "fill.min_valid: min_valid 99 is more than the" in result.stdout
    result = runner.invoke(app, ["run", str(big), "-q", "--overwrite"])
    assert result.exit_code == 2 and "min_valid must be a whole number from 1 to" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fill_in_small_chunks_is_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import geomask.fill

    scene, mask = _scene(11, "float32")
    src = write_raster(tmp_path / "s.tif", scene)
    kernel = kernels.get("gaussian", sigma=1.0)
    monkeypatch.setattr(geomask.fill, "MAX_CELLS", 7)  # fewer cells than one footprint: 1 target at a time
    got = _run(src, [Step(kernel, ArraySource(mask), fill=2)], 64)
    assert_bits_equal(got, oracle(scene, np.asarray(kernel.weights), "linear", mask, None, 2))
