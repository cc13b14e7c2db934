"""Alpha bands and GDAL mask bands mark invalid pixels like nodata (``validity: honour``, the default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.enums import ColorInterp, MaskFlags
from test_engine import assert_bits_equal

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.errors import ConfigError
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

SHAPE = (37, 45)
GAUSS = kernels.get("gaussian", sigma=1.5)


def _holes(seed: int) -> np.ndarray:
    """Valid (True) everywhere but some blocky holes and a border strip."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((SHAPE[0] // 4 + 1, SHAPE[1] // 4 + 1)) > 0.25
    valid = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[: SHAPE[0], : SHAPE[1]].copy()
    valid[:, :3] = False
    return valid


def _rgba(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA uint8 GeoTIFF whose alpha is 0 on the holes (their RGB random, as in real files)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(3, *SHAPE), dtype=np.uint8)
    valid = _holes(seed)
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    write_raster(path, np.concatenate([rgb, alpha[None]]), photometric="RGB", alpha="YES")
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
    return rgb, valid


def _run(src: Path, steps: list[Step], window: int = 16, **kwargs: object) -> rasterio.DatasetReader:
    out = src.with_name(src.stem + f".out{window}.tif")
    options = RunOptions(window_size=window, align_windows=False, workers=2)
    process_scene(src, OutputSpec(out, overwrite=True), steps, options=options, **kwargs)  # type: ignore[arg-type]
    return rasterio.open(out)


def test_rgba_transparent_pixels_do_not_move_and_do_not_contribute(tmp_path: Path) -> None:
    rgb, valid = _rgba(tmp_path / "rgba.tif")
    target = np.ones(SHAPE, dtype=bool)
    target[30:, 40:] = False
    with _run(tmp_path / "rgba.tif", [Step(GAUSS, ArraySource(target))]) as out:
        got = out.read()
        assert out.colorinterp[3] == ColorInterp.alpha
    assert np.array_equal(got[3], np.where(valid, 255, 0))  # the alpha band, byte for byte
    assert np.array_equal(got[:3, ~valid], rgb[:, ~valid])  # transparent pixels never change
    # The oracle: the alpha-0 pixels as an explicit nodata mask (never contribute, never change).
    expected = masked_convolve(rgb, GAUSS, target & valid, support=valid)
    assert_bits_equal(got[:3], expected)
    assert (got[:3, valid & target] != rgb[:, valid & target]).any()


def test_validity_ignore_is_the_old_behaviour(tmp_path: Path) -> None:
    rgb, valid = _rgba(tmp_path / "rgba.tif")
    with _run(tmp_path / "rgba.tif", [Step(GAUSS)], validity="ignore") as out:
        got = out.read()
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    assert_bits_equal(got, masked_convolve(np.concatenate([rgb, alpha[None]]), GAUSS, None))
    assert (got[3] != alpha).any() and (got[:3, ~valid] != rgb[:, ~valid]).any()


def test_alpha_band_listed_in_bands_is_refused(tmp_path: Path) -> None:
    _rgba(tmp_path / "rgba.tif")
    with pytest.raises(ConfigError, match="band 4 is the alpha band"):
        _run(tmp_path / "rgba.tif", [Step(GAUSS)], bands=[1, 4])


@pytest.mark.parametrize("internal", [True, False], ids=["internal-mask", "msk-sidecar"])
def test_gdal_mask_band_honoured_and_kept(tmp_path: Path, internal: bool) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4000, size=(2, *SHAPE)).astype(np.uint16)
    valid = _holes(3)
    src = write_raster(tmp_path / "masked.tif", data)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=internal), rasterio.open(src, "r+") as ds:
        ds.write_mask(np.where(valid, 255, 0).astype(np.uint8))
    assert (tmp_path / "masked.tif.msk").exists() != internal
    with rasterio.open(src) as ds:
        assert ds.mask_flag_enums[0] == [MaskFlags.per_dataset]
    with _run(src, [Step(GAUSS)], window=13) as out:
        got = out.read()
        assert out.mask_flag_enums[0] == [MaskFlags.per_dataset]
        assert np.array_equal(out.read_masks(1) != 0, valid)  # the output keeps the mask
    assert not (tmp_path / "masked.out13.tif.msk").exists()  # internal in the output
    assert_bits_equal(got, masked_convolve(data, GAUSS, valid, support=valid))
    assert np.array_equal(got[:, ~valid], data[:, ~valid])


@settings(max_examples=10, deadline=None)
@given(window=st.integers(3, 50), seed=st.integers(0, 100), kernel=st.sampled_from(["gaussian", "median"]))
def test_tiled_equals_whole(
    tmp_path_factory: pytest.TempPathFactory, window: int, seed: int, kernel: str
) -> None:
    folder = tmp_path_factory.mktemp("alpha")
    rgb, valid = _rgba(folder / "rgba.tif", seed)
    k = kernels.get(kernel, size=5) if kernel == "median" else GAUSS
    with _run(folder / "rgba.tif", [Step(k), Step(k)], window=window) as out:
        got = out.read()
    once = masked_convolve(rgb, k, valid, support=valid)
    assert_bits_equal(got[:3], masked_convolve(once, k, valid, support=valid))
