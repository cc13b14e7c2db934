"""The QGIS Processing provider (geomask/qgis_plugin) and `geomask qgis install|uninstall`.

The provider runs inside QGIS's own Python, so it is tested through QGIS: ``qgis_process`` headless
(``QT_QPA_PLATFORM=offscreen``) for the toolbox algorithms and the model, and QGIS's ``python3``
for what qgis_process cannot do (a feedback that cancels, a memory layer, a layer that is not a
file). Every QGIS run uses a temporary QGIS home (``QGIS_CUSTOM_CONFIG_PATH``), never the user's.
Without QGIS those tests skip; install/uninstall are tested everywhere.

On Debian, ``/usr/bin/qgis_process`` is a shell wrapper that adds ``--noversioncheck`` from
/etc/default/qgis, which qgis_process 3.22 rejects ("Command --noversioncheck not known!"): the
tests (and the docs) call the real binary ``qgis_process.bin`` when it exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from conftest import write_raster
from typer.testing import CliRunner

from geomask.cli import app
from geomask.qgis_install import PLUGIN_NAME

pytestmark = pytest.mark.slow  # subprocesses started and signalled: see pyproject's markers

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
MODEL = REPO / "pipelines" / "qgis" / "geomask_model.model3"
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
QGIS_PYTHON = "/usr/bin/python3"
needs_qgis = pytest.mark.skipif(
    QGIS_PROCESS is None,
    reason="QGIS is not installed: install the Debian package qgis (apt-get install qgis python3-qgis) "
    "to run the QGIS provider tests",
)
runner = CliRunner()


# -- install / uninstall (no QGIS needed) ---------------------------------------------------------
@pytest.mark.slow  # about 2 s: it runs the recorded command once
def test_install_copies_configures_and_enables_then_uninstall_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "qgis"
    monkeypatch.setenv("QGIS_CUSTOM_CONFIG_PATH", str(home))
    settings = home / "profiles" / "work" / "QGIS" / "QGIS3.ini"
    settings.parent.mkdir(parents=True)
    settings.write_text("[qgis]\nfoo=1\n\n[PythonPlugins]\nother=true\n\n[Windows]\nbar=x\n")
    for _ in range(2):  # a second install replaces the first
        result = runner.invoke(app, ["qgis", "install", "--profile", "work"])
        assert result.exit_code == 0, result.output
    plugin = home / "profiles" / "work" / "python" / "plugins" / PLUGIN_NAME
    assert result.stdout.startswith(f"installed {plugin} ")
    assert "hasProcessingProvider=yes" in (plugin / "metadata.txt").read_text()
    assert "qgisMinimumVersion=3.22" in (plugin / "metadata.txt").read_text()
    assert (plugin / "algorithms" / "filter_in_polygons.py").is_file()
    config = json.loads((plugin / "geomask.json").read_text())
    assert config["command"] == [str(Path(sys.executable).absolute()), "-m", "geomask"]
    assert config["kernels"]["gaussian"] == ["sigma", "radius"]
    text = settings.read_text()
    assert text == "[qgis]\nfoo=1\n\n[PythonPlugins]\nother=true\ngeomask_provider=true\n\n[Windows]\nbar=x\n"
    assert (
        subprocess.run([*config["command"], "--version"], env={**os.environ, **config["env"]}).returncode == 0
    )

    result = runner.invoke(app, ["qgis", "uninstall", "--profile", "work"])
    assert result.exit_code == 0 and result.stdout == f"removed {plugin}\n"
    assert not plugin.exists()
    assert settings.read_text() == "[qgis]\nfoo=1\n\n[PythonPlugins]\nother=true\n\n[Windows]\nbar=x\n"
    result = runner.invoke(app, ["qgis", "uninstall", "--profile", "work"])
    assert result.exit_code == 0 and "not installed" in result.stdout


def test_install_into_a_fresh_home_creates_the_profile(tmp_path: Path) -> None:
    result = runner.invoke(app, ["qgis", "install", "--qgis-home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "profiles/default/python/plugins" / PLUGIN_NAME / "geomask.json").is_file()
    assert (
        tmp_path / "profiles/default/QGIS/QGIS3.ini"
    ).read_text() == "[PythonPlugins]\ngeomask_provider=true\n"


def test_uninstall_refuses_a_folder_that_is_not_a_plugin(tmp_path: Path) -> None:
    folder = tmp_path / "profiles/default/python/plugins" / PLUGIN_NAME
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["qgis", "uninstall", "--qgis-home", str(tmp_path)])
    assert result.exit_code == 2 and "is not a QGIS plugin folder" in result.stderr
    assert (folder / "notes.txt").exists()


# -- through QGIS --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A temporary QGIS home with the plugin installed; the environment that makes QGIS use it."""
    home = tmp_path_factory.mktemp("qgis-home")
    result = runner.invoke(app, ["qgis", "install", "--qgis-home", str(home)])
    assert result.exit_code == 0, result.output
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = _without_venvs(env.get("PATH", ""))
    return env | {"QGIS_CUSTOM_CONFIG_PATH": str(home), "QT_QPA_PLATFORM": "offscreen"}


def _without_venvs(path: str) -> str:
    """``path`` less the ``bin`` folders of virtual environments, as a desktop launches QGIS.

    QGIS's embedded Python finds its home from the first ``python3`` on PATH: an activated venv's
    (``pyvenv.cfg`` beside its ``bin``) points it at that venv's base interpreter's standard library
    and hides the system's ``qgis`` module ("Couldn't load SIP module"). The plugin itself runs
    geomask by the absolute command recorded at install, so it needs no PATH entry.
    """
    kept = [p for p in path.split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").is_file()]
    return os.pathsep.join(kept)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of data/: QGIS may write .aux.xml files beside the rasters it opens."""
    folder = tmp_path_factory.mktemp("data") / "data"
    shutil.copytree(DATA, folder)
    return folder


def qgis_process(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert QGIS_PROCESS is not None
    return subprocess.run(
        [QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=600, cwd=cwd
    )


def qgis_run(
    env: dict[str, str], algorithm: str, cwd: Path | None = None, **parameters: Any
) -> dict[str, Any]:
    """``qgis_process --json run ALGORITHM -- KEY=VALUE...`` (in ``cwd``); its results (fails on an error)."""
    values = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in parameters.items()]
    done = qgis_process(env, "--json", "run", algorithm, "--", *values, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{") :])["results"]


def geomask_run(pipeline: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "geomask", "run", str(pipeline), *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def reference(folder: Path, name: str, pipeline: dict[str, Any]) -> bytes:
    """Run ``pipeline`` saved as ``folder/NAME.yaml`` with `geomask run`; return the output's bytes
    and remove it (so the QGIS run writes the same path: the path is part of the provenance tags)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(pipeline))
    geomask_run(path)
    output = Path(pipeline["output"]["path"])
    data = output.read_bytes()
    output.unlink()
    return data


@needs_qgis
@pytest.mark.slow
def test_list_shows_the_three_algorithms(qgis_env: dict[str, str]) -> None:
    done = qgis_process(qgis_env, "list")
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines() if line.startswith("\tgeomask:")]
    assert [line[1] for line in lines] == [
        "geomask:filterinclasses",
        "geomask:filterinpolygons",
        "geomask:runpipeline",
    ]


@needs_qgis
@pytest.mark.slow
def test_filterinpolygons_equals_geomask_run(qgis_env: dict[str, str], data: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "filtered.tif"
    expected = reference(
        tmp_path / "ref",
        "filterinpolygons",
        {
            "input": str(data / "RGB.byte.tif"),
            "bands": [1, 2],
            "mask": {"vector": str(data / "roi_fields.gpkg"), "where": "landcover = 'forest'"},
            "kernel": {"name": "median", "size": 5},
            "op": "correlate",
            "boundary": "nearest",
            "support": "target",
            "output": {"path": str(output), "format": "COG"},
        },
    )
    results = qgis_run(
        qgis_env,
        "geomask:filterinpolygons",
        INPUT=data / "RGB.byte.tif",
        MASK=data / "roi_fields.gpkg",
        WHERE="landcover = 'forest'",
        KERNEL="median",
        SIZE=5,
        OP="correlate",
        BOUNDARY="nearest",
        BANDS="1,2",
        SUPPORT_TARGET=True,
        FORMAT="COG",
        OUTPUT=output,
    )
    assert results["OUTPUT"] == str(output)
    assert output.read_bytes() == expected


@needs_qgis
@pytest.mark.slow
def test_filterinclasses_equals_geomask_run(qgis_env: dict[str, str], data: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "sharpened.tif"
    expected = reference(
        tmp_path / "ref",
        "filterinclasses",
        {
            "input": str(data / "RGB.byte.tif"),
            "mask": {"raster": str(data / "landcover.tif"), "values": [3, 4]},
            "kernel": {"name": "sharpen", "amount": 0.5},
            "output": {"path": str(output)},
        },
    )
    results = qgis_run(  # relative paths: from qgis_process's working directory
        qgis_env,
        "geomask:filterinclasses",
        cwd=tmp_path,
        INPUT=os.path.relpath(data / "RGB.byte.tif", tmp_path),
        CLASSES=os.path.relpath(data / "landcover.tif", tmp_path),
        VALUES="3,4",
        KERNEL="sharpen",
        AMOUNT=0.5,
        OUTPUT="out/sharpened.tif",
    )
    assert results["OUTPUT"] == str(output)
    assert output.read_bytes() == expected


@needs_qgis
@pytest.mark.slow
def test_runpipeline_runs_the_file_and_lists_its_outputs(qgis_env: dict[str, str], tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "data")  # the pipeline's ../data, and QGIS may write .aux.xml there
    (tmp_path / "pipelines").mkdir()
    pipeline = shutil.copy(REPO / "pipelines" / "roi_denoise.yaml", tmp_path / "pipelines")
    output = tmp_path / "out" / "RGB.denoised.tif"
    results = qgis_run(qgis_env, "geomask:runpipeline", PIPELINE=pipeline, OVERWRITE=True)
    assert results["OUTPUTS"] == [str(output)] and results["OUTPUT"] == str(output)
    produced = output.read_bytes()
    geomask_run(Path(pipeline), "--overwrite")
    assert output.read_bytes() == produced
    # without OVERWRITE the current output is skipped, and still listed
    assert qgis_run(qgis_env, "geomask:runpipeline", PIPELINE=pipeline)["OUTPUTS"] == [str(output)]


@needs_qgis
@pytest.mark.slow
def test_bad_parameter_fails_with_geomask_message(
    qgis_env: dict[str, str], data: Path, tmp_path: Path
) -> None:
    output = tmp_path / "bad.tif"
    done = qgis_process(
        qgis_env,
        "run",
        "geomask:filterinpolygons",
        "--",
        f"INPUT={data / 'RGB.byte.tif'}",
        f"MASK={data / 'roi_fields.gpkg'}",
        "KERNEL=median",
        "SIZE=4",
        f"OUTPUT={output}",
    )
    assert done.returncode != 0
    message = "geomask: kernel: kernel 'median': size must be a positive odd number (3, 5, 7, ...), got 4"
    assert message in done.stderr, done.stderr[-2000:]
    assert not output.exists()


@needs_qgis
@pytest.mark.slow
def test_model_chains_filterinpolygons_and_filterinclasses(
    qgis_env: dict[str, str], data: Path, tmp_path: Path
) -> None:
    output = tmp_path / "model.tif"
    results = qgis_run(
        qgis_env,
        str(MODEL),
        raster=data / "RGB.byte.tif",
        polygons=data / "roi_fields.gpkg",
        classes=data / "landcover.tif",
        **{"sharpen:filtered": output},
    )
    assert results["sharpen:filtered"] == str(output)
    with rasterio.open(output) as dst, rasterio.open(data / "RGB.byte.tif") as src:
        tags = dst.tags()
        assert dst.profile["width"] == src.width and not np.array_equal(dst.read(), src.read())
    assert tags["GEOMASK_PIPELINE"] == "filterinclasses"
    assert "sharpen" in tags["GEOMASK_KERNEL"] and "landcover.tif" in tags["GEOMASK_MASK"]


@needs_qgis
@pytest.mark.slow
def test_inside_qgis_memory_layer_cancel_and_non_file_raster(
    qgis_env: dict[str, str], data: Path, tmp_path: Path
) -> None:
    """Runs tests/_qgis_inside.py in QGIS's python3 (see there for the three cases)."""
    usable = (
        Path(QGIS_PYTHON).exists() and subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"]).returncode == 0
    )
    if not usable:
        pytest.skip(f"{QGIS_PYTHON} cannot import qgis: install the Debian package python3-qgis")
    big = tmp_path / "big.tif"
    rng = np.random.default_rng(0)
    write_raster(big, rng.integers(1, 255, (2048, 2048), dtype=np.uint8), block=512)
    plugins = Path(qgis_env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles" / "default" / "python" / "plugins"
    out = tmp_path / "out"
    env = {k: v for k, v in qgis_env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # One window at a time, so the run is still going when the feedback cancels (on any core count);
    # the provider passes the environment, GEOMASK_PROFILE included, on to geomask.
    (tmp_path / "profile.yaml").write_text("scheduler: synchronous\n")
    env["GEOMASK_PROFILE"] = str(tmp_path / "profile.yaml")
    done = subprocess.run(
        [
            QGIS_PYTHON,
            str(Path(__file__).with_name("_qgis_inside.py")),
            str(plugins),
            str(data / "RGB.byte.tif"),
            str(big),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cases = {c["case"]: c for c in map(json.loads, filter(None, done.stdout.splitlines()))}

    memory = cases["memory"]
    assert memory["ok"] and memory["results"]["OUTPUT"] == str(out / "memory.tif"), memory
    assert memory["top_progress"] == 100.0
    with rasterio.open(out / "memory.tif") as dst:
        assert dst.tags()["GEOMASK_MASK"].startswith("vector(")

    cancel = cases["cancel"]
    assert not cancel["ok"], cancel
    assert any("cancelled: geomask was stopped" in e for e in cancel["errors"]), cancel
    assert 0 < cancel["top_progress"] < 100 and cancel["seconds_after_cancel"] < 30, cancel
    assert not (out / "cancelled").exists() or list((out / "cancelled").iterdir()) == []

    refused = cases["not_a_file"]
    assert not refused["ok"]
    assert any("is not a raster file (provider virtualraster)" in e for e in refused["errors"]), refused
