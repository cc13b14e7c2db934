"""Tests of `geomask validate` (and `geomask schema`, `geomask kernels`, `--help`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures_cli import make_project, shipped_pipelines, write_yaml
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app

runner = CliRunner()


def test_valid_pipeline(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok (1 step)\n"


def test_every_problem_with_line_numbers(tmp_path: Path) -> None:
    """A misspelled key, a wrong type and a missing required key: three lines, exit 2."""
    path = write_yaml(
        tmp_path / "p.yaml",
        "input: a.tif\nkernel:\n  name: box\n  size: three\nbondary: reflect\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{path}:1:1: output: missing required key 'output'",
        f"{path}:4:9: kernel.size: expected a whole number, got 'three'",
        f"{path}:5:1: bondary: unknown key 'bondary'. Did you mean 'boundary'?",
    ]
    assert "Traceback" not in result.output


def test_missing_files_are_problems(tmp_path: Path) -> None:
    path = make_project(tmp_path, mask={"vector": "nowhere.gpkg"})
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == f"{path}:3:11: mask.vector: no such vector file: {tmp_path / 'nowhere.gpkg'}\n"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", "input: [a.tif\nkernel: {name: box}\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout.startswith(f"{path}:2:") and "YAML syntax error" in result.stdout


def test_python_tag_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", "input: !!python/object/apply:os.system ['touch HACKED']\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:1:8: input: tag !!python/object/apply:os.system is not allowed" in result.stdout
    assert not Path("HACKED").exists()


def test_missing_file_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file: check the path\n"


def test_several_files_and_profile(tmp_path: Path) -> None:
    good = make_project(tmp_path)
    bad = write_yaml(tmp_path / "bad.yaml", "input: a.tif\n")
    profile = write_yaml(tmp_path / "local.yaml", "scheduler: thread\n")
    result = runner.invoke(app, ["validate", str(good), str(bad), "--profile", str(profile)])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"{good}: ok (1 step)"
    assert any(line.startswith(f"{bad}:1:1:") for line in lines)
    assert any(
        "scheduler: expected threads, processes, synchronous or a scheduler address" in x for x in lines
    )


@pytest.mark.parametrize("path", shipped_pipelines(), ids=lambda p: p.name)
def test_shipped_pipelines_validate(path: Path) -> None:
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Pipeline" and "kernel" in schema["properties"]
    result = runner.invoke(app, ["schema", "profile"])
    assert json.loads(result.stdout)["title"] == "Profile"


def test_kernels_lists_every_kernel() -> None:
    result = runner.invoke(app, ["kernels"])
    assert result.exit_code == 0
    for name in kernels.names():
        assert f"\n{name}: " in "\n" + result.stdout
    assert "sigma: standard deviation in pixels" in result.stdout
    assert "gaussian(sigma=1.0, radius=3) 7x7" in result.stdout
    assert "custom:" in result.stdout


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["kernels"], ["schema"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: geomask" in result.stdout


def test_run_help_documents_every_option() -> None:
    text = runner.invoke(app, ["run", "--help"]).stdout
    for option in (
        "--overwrite",
        "--profile",
        "--window-size",
        "--scheduler",
        "--workers",
        "--continue-on-error",
        "--report",
        "--quiet",
        "--debug",
    ):
        assert option in text


def test_usage_error_exit_2() -> None:
    result = runner.invoke(app, ["run", "x.yaml", "--scheduler", "fast"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2


# ---------------------------------------------------------------- checks against the scenes' headers


def _problems(path: Path) -> list[str]:
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    return [line.split(": ", 1)[1] for line in result.stdout.splitlines()]


def test_band_references_kernel_size_and_nodata_checked_against_the_scene(tmp_path: Path) -> None:
    # The 64 x 48 two-band uint16 scene exists: what a run would refuse, validate says, each at its key.
    make_project(tmp_path)
    path = write_yaml(
        tmp_path / "p.yaml",
        "input: scene.tif\nbands: [1, 7]\nnodata: 300\n"
        "steps:\n"
        "  - kernel: {name: gaussian, sigma: '3000 m'}\n"
        "    mask: {all: [{expression: 'b7 > 1'},\n"
        "                 {grow: 3, mask: {kmeans: {k: 2, select: [1], bands: [5]}}}]}\n"
        "  - kernel: {name: median, size: 51}\n"
        "output: {path: 'out/{stem}.tif'}\n",
    )
    lines = "\n".join(_problems(path))
    assert "bands: band 7 is not in" in lines
    assert "steps[0].mask.all[0].expression: band b7 is not in" in lines and "(2 bands: b1..b2)" in lines
    assert "steps[0].mask.all[1].mask.kmeans.bands: band 5 is not in" in lines
    assert "steps[0].kernel: the kernel is 601x601 but" in lines and "is only 48x64 pixels" in lines
    assert "steps[1].kernel: the kernel is 51x51 but" in lines


@pytest.mark.parametrize(
    ("dtype", "nodata", "message"),
    [
        ("uint8", "300", "nodata 300 is not a uint8 value (whole numbers 0..255)"),
        ("uint16", "-1", "nodata -1 is not a uint16 value (whole numbers 0..65535)"),
        ("int16", ".nan", "nodata NaN cannot occur in int16 pixels"),
        ("float32", "1e40", "nodata 1e+40 is outside the float32 range -3.40282e+38..3.40282e+38"),
    ],
)
def test_out_of_range_nodata_refused_by_validate_and_run(
    tmp_path: Path, dtype: str, nodata: str, message: str
) -> None:
    import rasterio
    from _fixtures_cli import make_scene

    make_project(tmp_path)
    make_scene(tmp_path / "scene.tif", dtype="uint8", nodata=None)
    with rasterio.open(tmp_path / "scene.tif") as src:
        profile, data = src.profile, src.read()
    with rasterio.open(tmp_path / "scene.tif", "w", **{**profile, "dtype": dtype}) as dst:
        dst.write(data.astype(dtype))
    path = write_yaml(
        tmp_path / "p.yaml",
        f"input: scene.tif\nnodata: {nodata}\nkernel: {{name: box}}\noutput: {{path: out/x.tif}}\n",
    )
    assert any(message in line for line in _problems(path))
    result = runner.invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "x.tif").exists()


def test_two_inputs_one_output_is_a_validate_problem(tmp_path: Path) -> None:
    from _fixtures_cli import make_scene

    make_scene(tmp_path / "a.tif")
    make_scene(tmp_path / "b.tif")
    path = write_yaml(
        tmp_path / "p.yaml", "input: [a.tif, b.tif]\nkernel: {name: box}\noutput: {path: out/x.tif}\n"
    )
    (problem,) = _problems(path)
    assert problem.startswith("output.path: ") and "would both be written to" in problem


def test_output_on_a_mask_file_or_the_pipeline_is_a_validate_problem(tmp_path: Path) -> None:
    """validate refuses what run refuses: an output on a mask's sidecar or on the pipeline file."""
    from _fixtures_cli import make_scene

    make_scene(tmp_path / "a.tif")
    write_yaml(tmp_path / "roi.csv", "x\n")
    for target in ("roi.csv", "p.yaml"):
        path = write_yaml(
            tmp_path / "p.yaml",
            f"input: a.tif\nmask: {{raster: roi.csv, values: [1]}}\nkernel: {{name: box}}\n"
            f"output: {{path: {target}}}\n",
        )
        (problem,) = _problems(path)
        assert problem.startswith(f"output.path: {tmp_path / target} (for ") and "never replaces" in problem


def test_invalid_vector_crs_is_a_validate_problem_in_plain_words(tmp_path: Path) -> None:
    """validate said ok for a vector mask's unknown crs (only a run found it), and the message
    carried pyproj's wrapping ('Internal Proj Error: proj_create: ...') and a WKT as typed."""
    from _fixtures_cli import make_scene

    make_scene(tmp_path / "a.tif")
    wkt = 'PROJCS["' + "x" * 600 + '"]'
    for crs, reason in (("EPSG:999999", "(crs not found: EPSG:999999)"), (wkt, "(missing CONVERSION node)")):
        path = write_yaml(
            tmp_path / "p.yaml",
            f"input: a.tif\nmask: {{vector: roi.gpkg, crs: '{crs}'}}\nkernel: {{name: box}}\n"
            "output: {path: o.tif}\n",
        )
        problems = _problems(path)
        problem = next(p for p in problems if p.startswith("mask.crs: "))
        assert "given for vector file roi.gpkg is not a valid CRS " + reason in problem, problem
        assert "Internal Proj Error" not in problem and "proj_create" not in problem and len(problem) < 250


def test_validate_allocates_a_few_mb_whatever_the_kernel(tmp_path: Path) -> None:
    # A gaussian of sigma 333 (2001 x 2001 weights, 32 MB, 2.9 GB for sigma 3000 before) is checked from
    # its parameters; the scene's header is read, not its pixels.
    import tracemalloc

    make_project(tmp_path)
    path = write_yaml(
        tmp_path / "p.yaml",
        "input: scene.tif\nkernel: {name: gaussian, sigma: 333}\noutput: {path: out/x.tif}\n",
    )
    runner.invoke(app, ["validate", str(path)])  # imports and caches out of the measure
    tracemalloc.start()
    try:
        result = runner.invoke(app, ["validate", str(path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the kernel is 1999x1999" in result.stdout
    assert peak < 4_000_000, f"{peak / 1e6:.1f} MB"


def test_validate_reads_a_stream_once(tmp_path: Path) -> None:
    import os
    import threading

    make_project(tmp_path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    text = (tmp_path / "pipeline.yaml").read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = runner.invoke(app, ["validate", str(fifo)])
    writer.join(5)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{fifo}: ok (1 step)\n"


def _rgba(path: Path) -> None:
    """A 3-band uint8 scene with an alpha band (no nodata value), a few transparent pixels."""
    import numpy as np
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    data = np.random.default_rng(0).integers(1, 255, size=(4, 24, 20), dtype=np.uint8)
    data[3] = 255
    data[3, :4, :4] = 0
    profile = {"driver": "GTiff", "width": 20, "height": 24, "count": 4, "dtype": "uint8"}
    with rasterio.open(
        path, "w", **profile, crs="EPSG:32633", transform=from_origin(500000, 5200000, 10, 10)
    ) as ds:
        ds.write(data)
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]


@pytest.mark.parametrize(
    ("scene", "extra", "fix"),
    [
        ("nodata", "", "or nodata: none"),  # make_scene writes nodata 0
        ("rgba", "", "or validity: ignore"),
        ("rgba", "validity: ignore\n", None),
        ("nodata", "normalize: false\n", None),
        ("nodata", "nodata: none\n", None),
    ],
)
def test_zero_sum_kernel_on_invalid_pixels_is_a_validate_problem(
    tmp_path: Path, scene: str, extra: str, fix: str | None
) -> None:
    """A Laplacian renormalised over nodata or alpha-0 pixels: validate says what run says (exit 2)."""
    from _fixtures_cli import make_scene

    if scene == "rgba":
        _rgba(tmp_path / "scene.tif")
    else:
        make_scene(tmp_path / "scene.tif")
    path = write_yaml(
        tmp_path / "p.yaml",
        f"input: scene.tif\nkernel: {{name: laplacian}}\n{extra}output: {{path: out/x.tif}}\n",
    )
    validated = runner.invoke(app, ["validate", str(path)])
    ran = runner.invoke(app, ["run", str(path), "-q"])
    if fix is None:
        assert (validated.exit_code, ran.exit_code) == (0, 0), validated.output + ran.output
        return
    assert validated.exit_code == 2 and ran.exit_code == 2
    assert "kernel: " in validated.stdout and "weights summing to 0" in validated.stdout
    assert len(validated.stdout.strip().splitlines()) == 1
    for message in (validated.stdout, ran.stderr):
        assert fix in message, message
    assert not (tmp_path / "out" / "x.tif").exists()


@pytest.mark.parametrize("target", ["qa.tif", "p.yaml", "scene.tif"])
def test_an_output_replacing_a_file_of_the_pipeline_is_a_validate_problem(
    tmp_path: Path, target: str
) -> None:
    """What the run refuses before any scene (even with --overwrite), validate reports at output.path."""
    import shutil

    from _fixtures_cli import make_scene

    make_scene(tmp_path / "scene.tif")
    shutil.copy(tmp_path / "scene.tif", tmp_path / "qa.tif")
    path = write_yaml(
        tmp_path / "p.yaml",
        "input: scene.tif\nkernel: {name: box}\nmask: {raster: qa.tif, values: [1]}\n"
        f"output: {{path: {target}, overwrite: true}}\n",
    )
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    validated = runner.invoke(app, ["validate", str(path)])
    assert validated.exit_code == 2, validated.output
    assert "output.path: " in validated.stdout and "choose another output" in validated.stdout
    assert len(validated.stdout.strip().splitlines()) == 1
    ran = runner.invoke(app, ["run", str(path), "-q", "--overwrite"])
    assert ran.exit_code == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_pipeline_on_stdin_resolves_paths_against_the_working_directory(tmp_path: Path) -> None:
    """`geomask validate /dev/stdin < p.yaml` resolved s.tif to /dev/s.tif ('no such file')."""
    import subprocess
    import sys

    make_project(tmp_path)
    text = (tmp_path / "pipeline.yaml").read_text()
    done = subprocess.run(
        [sys.executable, "-c", "from geomask.cli import main; main()", "validate", "/dev/stdin"],
        input=text,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "/dev/stdin: ok (1 step)\n", done.stdout + done.stderr


def test_an_output_name_whose_temporary_is_too_long_is_a_validate_problem(tmp_path: Path) -> None:
    from _fixtures_cli import make_scene

    make_scene(tmp_path / "a.tif")
    path = write_yaml(
        tmp_path / "p.yaml", f"input: a.tif\nkernel: {{name: box}}\noutput: {{path: out/{'a' * 235}.tif}}\n"
    )
    (problem,) = _problems(path)
    assert problem.startswith("output.path: ") and "with the suffix of the temporary files" in problem
