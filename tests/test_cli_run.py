"""End-to-end tests of `geomask run`: exit codes, one-line errors, --debug, clean failures, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_cli import (
    CONFIGS,
    DATA,
    REPO,
    corrupt_tiles,
    make_project,
    make_roi,
    make_scene,
    roi_mask,
    shipped_pipelines,
    write_yaml,
)
from typer.testing import CliRunner

import geomask.executors.local
import geomask.pipeline
import geomask.scene_task
from geomask.cli import app
from geomask.errors import RunError

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["run", *args])
    return result.exit_code, result.stdout, result.stderr


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_run_writes_the_output(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    code, out, err = _run(str(pipeline), "--quiet")
    assert code == 0, err
    output = tmp_path / "out" / "scene.denoised.tif"
    assert out.startswith(f"done    {tmp_path / 'scene.tif'} -> {output}: 660 pixels selected,")
    with rasterio.open(tmp_path / "scene.tif") as src, rasterio.open(output) as dst:
        before, after = src.read(), dst.read()
        assert (dst.crs, dst.transform, dst.nodata, dst.dtypes, dst.count) == (
            src.crs,
            src.transform,
            src.nodata,
            src.dtypes,
            src.count,
        )
        tags = dst.tags()
    mask = roi_mask(before.shape[1:])
    assert np.array_equal(before[:, ~mask], after[:, ~mask])
    assert not np.array_equal(before[:, mask], after[:, mask])
    assert tags["GEOMASK_KERNEL"] == "convolve gaussian(sigma=1.0, radius=3) 7x7"
    assert tags["GEOMASK_MASK"] == "vector(roi.geojson)"
    assert len(tags["GEOMASK_PIPELINE_SHA256"]) == 64


def test_rerun_skips_and_foreign_output_needs_overwrite(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    assert _run(str(pipeline), "-q")[0] == 0
    output = tmp_path / "out" / "scene.denoised.tif"
    before = output.read_bytes()
    code, out, err = _run(str(pipeline), "-q")
    assert code == 0, err
    assert out == f"skipped {tmp_path / 'scene.tif'} -> {output} (up to date)\n"
    assert output.read_bytes() == before
    output.write_bytes(b"not geomask's")
    code, _out, err = _run(str(pipeline), "-q")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "--overwrite" in err
    assert output.read_bytes() == b"not geomask's"
    assert _run(str(pipeline), "-q", "--overwrite")[0] == 0
    assert output.read_bytes() == before


def test_invalid_pipeline_exit_2_one_line(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path, kernel={"name": "gausian"})
    code, _out, err = _run(str(pipeline))
    assert code == 2
    assert err == f"error: {pipeline}:5:3: kernel: unknown kernel 'gausian'. Did you mean 'gaussian'? " + (
        "Known kernels: box, disk, emboss, gaussian, laplacian, maximum, median, minimum, sharpen, sobel_x, "
        "sobel_y\n"
    )
    assert not (tmp_path / "out").exists()


def test_missing_input_exit_2_and_debug_traceback(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path, input="missing.tif")
    code, _, err = _run(str(pipeline))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "missing.tif" in err
    assert "Traceback" not in err
    code, _, err = _run(str(pipeline), "--debug")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("error: ")


def test_corrupt_scene_exit_1_nothing_left(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path, input="bad.tif")
    make_scene(tmp_path / "bad.tif", width=256, height=256, tiled=True)
    corrupt_tiles(tmp_path / "bad.tif")
    code, _out, err = _run(str(pipeline), "-q")
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert _leftovers(tmp_path / "out") == []


def test_failure_mid_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window that fails after others were written: exit 1, no output and no temporary file."""
    pipeline = make_project(tmp_path, input="big.tif")
    make_scene(tmp_path / "big.tif", width=1100, height=1100, count=1, tiled=True)
    real = geomask.executors.local.compute_window
    calls = []

    def flaky(job, window):  # type: ignore[no-untyped-def]
        calls.append(window)
        if len(calls) >= 3:
            raise RunError(f"simulated failure in window {window}")
        return real(job, window)

    monkeypatch.setattr(geomask.executors.local, "compute_window", flaky)
    code, _, err = _run(str(pipeline), "-q", "--window-size", "512", "--scheduler", "synchronous")
    assert code == 1, err
    assert "simulated failure" in err
    assert len(calls) == 3
    assert _leftovers(tmp_path / "out") == []


def test_unexpected_exception_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(geomask.scene_task, "process_scene", broken)
    pipeline = make_project(tmp_path)
    code, _, err = _run(str(pipeline))
    assert code == 1
    assert err.startswith("error: unexpected ZeroDivisionError: division by zero") and err.count("\n") == 1
    code, _, err = _run(str(pipeline), "--debug")
    assert "Traceback" in err and "ZeroDivisionError" in err


def test_warning_is_one_line(tmp_path: Path) -> None:
    """An ROI outside the scene: a one-line warning, the scene copied, exit 0."""
    pipeline = make_project(tmp_path, mask={"vector": "far.geojson"})
    make_scene(tmp_path / "scene.tif")
    far = tmp_path / "far.geojson"
    make_roi(far, box=(1000, 1000, 1010, 1010))
    code, out, err = _run(str(pipeline), "-q")
    assert code == 0, err
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "0 pixels selected" in out


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict:
    """What the real ``process_scene`` was called with (``seen["options"]``: the RunOptions)."""
    calls: dict = {}
    real = geomask.scene_task.process_scene

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["options"] = kwargs["options"]
        return real(*args, **kwargs)

    monkeypatch.setattr(geomask.scene_task, "process_scene", spy)
    return calls


@pytest.mark.slow
def test_options_reach_the_engine(tmp_path: Path, seen: dict) -> None:
    profile = write_yaml(tmp_path / "local.yaml", "scheduler: processes\nworkers: 2\nwindow_size: 256\n")
    pipeline = make_project(tmp_path)
    code, _, err = _run(
        str(pipeline), "-q", "--profile", str(profile), "--window-size", "32", "--workers", "1"
    )
    assert code == 0, err
    options = seen["options"]
    assert (options.scheduler, options.workers, options.window_size) == ("processes", 1, 32)


def test_profile_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = write_yaml(tmp_path / "bad.yaml", "workers: 0\n")
    monkeypatch.setenv("GEOMASK_PROFILE", str(profile))
    code, _, err = _run(str(make_project(tmp_path)))
    assert code == 2
    assert err.startswith(f"error: {profile}:1:10: workers: input should be greater than or equal to 1")


def test_batch_continue_on_error_and_report(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("a", "c"):
        make_scene(tmp_path / "in" / f"{name}.tif")
    corrupt_target = tmp_path / "in" / "b.tif"
    make_scene(corrupt_target, width=256, height=256, tiled=True)
    corrupt_tiles(corrupt_target)
    pipeline = make_project(tmp_path, input="in/*.tif", output={"path": "out/{stem}.tif"})
    report = tmp_path / "run.json"
    code, _out, err = _run(str(pipeline), "-q", "--continue-on-error", "--report", str(report))
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "c.tif"]
    assert f"failed  {corrupt_target}:" in err
    document = json.loads(report.read_text())
    assert document["ok"] is False
    assert [s["status"] for s in document["scenes"]] == ["done", "failed", "done"]
    assert "corrupt" in document["scenes"][1]["error"]
    # without --continue-on-error the run stops at the corrupt scene
    code, _, err = _run(str(pipeline), "-q", "--overwrite")
    assert code == 1 and err.startswith("error: ")


def test_batch_rerun_skips_finished_and_edited_pipeline_redoes(tmp_path: Path) -> None:
    """Three scenes, one corrupt: the rerun skips the two finished ones; an edit redoes them."""
    (tmp_path / "in").mkdir()
    for name in ("a", "c"):
        make_scene(tmp_path / "in" / f"{name}.tif")
    make_scene(tmp_path / "in" / "b.tif", width=256, height=256, tiled=True)
    corrupt_tiles(tmp_path / "in" / "b.tif")
    pipeline = make_project(tmp_path, input="in/*.tif", output={"path": "out/{stem}.tif"})
    report = tmp_path / "run.json"

    def statuses() -> list[str]:
        code, _out, _err = _run(str(pipeline), "-q", "--continue-on-error", "--report", str(report))
        assert code == 1
        return [s["status"] for s in json.loads(report.read_text())["scenes"]]

    assert statuses() == ["done", "failed", "done"]
    assert statuses() == ["skipped", "failed", "skipped"]
    code, out, _err = _run(str(pipeline), "--continue-on-error")  # the summary table lists them too
    assert code == 1
    assert out.count("skipped") == 4  # two scene lines, two table rows
    text = pipeline.read_text()
    assert "sigma: 1\n" in text
    write_yaml(pipeline, text.replace("sigma: 1\n", "sigma: 2\n"))
    assert statuses() == ["done", "failed", "done"]


def test_two_scenes_one_output_is_refused_before_running(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path, input=["scene.tif", "scene2.tif"])
    make_scene(tmp_path / "scene2.tif")
    code, _, err = _run(str(pipeline))
    assert code == 2
    assert "would both be written to" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not (DATA / "RGB.byte.tif").exists(), reason="data/RGB.byte.tif is missing")
def test_real_scene_with_roi_in_another_crs(tmp_path: Path) -> None:
    """data/RGB.byte.tif (UTM 18N) with data/roi_fields.geojson (EPSG:4326)."""
    pipeline = write_yaml(
        tmp_path / "p.yaml",
        {
            "input": str(DATA / "RGB.byte.tif"),
            "mask": {"vector": str(DATA / "roi_fields.geojson")},
            "kernel": {"name": "median", "size": 3},
            "output": {"path": "rgb.tif", "format": "COG"},
        },
    )
    code, out, err = _run(str(pipeline), "-q", "--window-size", "256")
    assert code == 0, err
    assert "71,407 pixels selected" in out
    with rasterio.open(DATA / "RGB.byte.tif") as src, rasterio.open(tmp_path / "rgb.tif") as dst:
        assert dst.crs == src.crs and dst.transform == src.transform and dst.count == src.count
        changed = (src.read() != dst.read()).any(axis=0)
    assert 0 < changed.sum() <= 71_407


@pytest.mark.slow
@pytest.mark.parametrize("path", shipped_pipelines(), ids=lambda p: p.name)
def test_shipped_pipelines_run(path: Path, tmp_path: Path) -> None:
    """Every pipeline in pipelines/ runs, its output redirected to a temporary folder."""
    from geomask.config import load_pipeline

    model = load_pipeline(path)
    output = model.output.model_copy(update={"path": tmp_path / Path(model.output.path).name})
    reports = geomask.pipeline.run_pipeline(model.model_copy(update={"output": output}))
    assert [r.status for r in reports] == ["done"] * len(reports)
    assert all(r.pixels_changed > 0 for r in reports)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["local", "processes"])
def test_shipped_profiles_run(name: str, tmp_path: Path, seen: dict) -> None:
    """configs/local.yaml and configs/processes.yaml run a small pipeline (output in tmp_path)."""
    pipeline = make_project(tmp_path)
    # two workers keep the process pool's start-up short; everything else is the profile's
    code, out, err = _run(str(pipeline), "-q", "--profile", str(CONFIGS / f"{name}.yaml"), "--workers", "2")
    assert code == 0, err
    assert "660 pixels selected" in out
    assert seen["options"].scheduler == {"local": "threads", "processes": "processes"}[name]
    with rasterio.open(tmp_path / "out" / "scene.denoised.tif") as dst:
        assert dst.tags()["GEOMASK_VERSION"]


def test_cluster_profile_with_a_local_scheduler(tmp_path: Path, seen: dict) -> None:
    """configs/cluster.yaml with --scheduler threads: runs here with the profile's other settings.

    (The cluster profiles themselves run against real dask processes in tests/test_cluster.py.)
    """
    pipeline = make_project(tmp_path)
    code, out, err = _run(
        str(pipeline), "-q", "--profile", str(CONFIGS / "cluster.yaml"), "--scheduler", "threads"
    )
    assert code == 0, err
    assert "660 pixels selected" in out
    assert (seen["options"].scheduler, seen["options"].window_size) == ("threads", 2048)
    assert seen["options"].gdal_options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "geomask").exists(), reason="no .venv/bin/geomask")
def test_console_script(tmp_path: Path) -> None:
    """The installed `geomask` script: exit codes and stderr of a real process."""
    script = str(REPO / ".venv" / "bin" / "geomask")
    pipeline = make_project(tmp_path, input="missing.tif")
    done = subprocess.run([script, "run", str(pipeline)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert done.stdout == ""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([script, "--version"], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0 and done.stdout.startswith("geomask ")


def test_gdal_cachemax_from_profile(tmp_path: Path) -> None:
    """GDAL_CACHEMAX arrives as text from YAML; rasterio needs an integer (megabytes)."""
    pipeline = make_project(tmp_path)
    good = write_yaml(tmp_path / "good.yaml", "gdal: {GDAL_CACHEMAX: 64}\n")
    assert _run(str(pipeline), "-q", "--profile", str(good))[0] == 0
    bad = write_yaml(tmp_path / "bad.yaml", "gdal: {GDAL_CACHEMAX: 10%}\n")
    code, _, err = _run(str(pipeline), "-q", "--overwrite", "--profile", str(bad))
    assert code == 2
    assert err.startswith("error: gdal: GDAL_CACHEMAX '10%' must be a whole number of megabytes")


# --- never overwrite what is not ours ---------------------------------------------------------------


def _protected_project(tmp_path: Path, **overrides: object) -> tuple[Path, Path]:
    pipeline = make_project(tmp_path, **overrides)
    profile = write_yaml(tmp_path / "profile.yaml", {"workers": 1})
    (tmp_path / "link.tif").symlink_to(tmp_path / "scene.tif")
    os.link(tmp_path / "roi.geojson", tmp_path / "hard.geojson")
    return pipeline, profile


@pytest.mark.parametrize(
    ("target", "role"),
    [
        ("scene.tif", "an input scene"),
        ("link.tif", "an input scene"),
        ("sub/../scene.tif", "an input scene"),
        ("roi.geojson", "the vector file"),
        ("hard.geojson", "the vector file"),
        ("pipeline.yaml", "the pipeline file"),
        ("profile.yaml", "the run profile"),
        ("out/scene.denoised.tif", "an output of this run"),
    ],
)
def test_report_never_replaces_a_file_of_the_run(tmp_path: Path, target: str, role: str) -> None:
    pipeline, profile = _protected_project(tmp_path)
    (tmp_path / "sub").mkdir()
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    path = str(tmp_path / target)
    code, _out, err = _run(str(pipeline), "-q", "--profile", str(profile), "--overwrite", "--report", path)
    assert code == 2 and err.count("\n") == 1 and role in err and "--overwrite" in err, err
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files
    assert not (tmp_path / "out").exists()  # refused before any scene ran


def test_report_replaces_its_own_and_needs_overwrite_for_a_foreign_file(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    report = tmp_path / "run.json"
    assert _run(str(pipeline), "-q", "--report", str(report))[0] == 0
    assert _run(str(pipeline), "-q", "--report", str(report))[0] == 0  # a geomask report: replaced
    assert json.loads(report.read_text())["scenes"][0]["status"] == "skipped"
    report.write_text('{"mine": 1}')
    code, _out, err = _run(str(pipeline), "-q", "--report", str(report))
    assert code == 2 and err.count("\n") == 1 and "did not write" in err and "--overwrite" in err
    assert report.read_text() == '{"mine": 1}'
    assert _run(str(pipeline), "-q", "--report", str(report), "--overwrite")[0] == 0
    assert "geomask_version" in json.loads(report.read_text())


@pytest.mark.parametrize(
    ("output", "role"),
    [
        ("scene.tif", "the input itself"),
        ("link.tif", "an input scene"),
        ("roi.geojson", "the vector file"),
        ("hard.geojson", "the vector file"),
        ("profile.yaml", "the run profile"),
    ],
)
def test_output_never_replaces_an_input(tmp_path: Path, output: str, role: str) -> None:
    pipeline, profile = _protected_project(tmp_path, output={"path": output})
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, _out, err = _run(str(pipeline), "-q", "--profile", str(profile), "--overwrite")
    assert code == 2 and err.count("\n") == 1 and role in err, err
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files


def test_progress_lines_report_windows_on_stderr(tmp_path: Path) -> None:
    """`--progress lines` prints parseable lines on stderr (stdout is not a terminal here), rising to
    100% of the scene; without it a non-terminal run prints only the result line."""
    pipeline = make_project(tmp_path)
    make_scene(tmp_path / "scene.tif", width=1600, height=40)  # windows align to 512-pixel output tiles
    code, out, err = _run(str(pipeline), "--window-size", "16", "--progress", "lines")
    assert code == 0, err
    lines = err.splitlines()
    windows = int(lines[0].rsplit("/", 1)[1])
    assert windows > 2 and lines[0] == f"progress: 0.0% scene 1/1 windows 0/{windows}"
    assert f"progress: 100.0% scene 1/1 windows {windows}/{windows}" in lines
    assert lines[-1] == "progress: 100.0% scene 1/1 windows 0/0"
    percents = [float(line.split()[1].rstrip("%")) for line in lines]
    assert percents == sorted(percents) and len(lines) >= windows
    assert out.startswith("done    ")
    code, _out, err = _run(str(pipeline), "--overwrite", "--window-size", "16")
    assert code == 0 and err == ""
    code, _out, err = _run(str(pipeline), "--progress", "bar")
    assert code == 2 and "auto, lines" in err


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_report_temporary_is_named_for_its_output_and_removed_on_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: str
) -> None:
    """The signal arrives while the report is being written (json.dump sends it to this process)."""
    import importlib
    import signal

    pipeline = make_project(tmp_path)
    report = tmp_path / "reports" / "run.json"
    seen: list[list[str]] = []
    dump = json.dump

    def dump_then_signal(document: object, f: object, **kwargs: object) -> None:
        seen.append(_leftovers(report.parent))
        dump(document, f, **kwargs)  # type: ignore[arg-type]
        os.kill(os.getpid(), getattr(signal, sig))

    module = importlib.import_module("geomask.cli.run")  # geomask.cli.run is also the command
    monkeypatch.setattr(module.json, "dump", dump_then_signal)
    code, _out, err = _run(str(pipeline), "-q", "--report", str(report))
    assert code == 128 + int(getattr(signal, sig)), err
    [names] = seen
    assert len(names) == 1 and names[0].startswith(f"run.json.geomask-{os.getpid()}-"), names
    assert names[0].endswith(".partial")
    assert _leftovers(report.parent) == []


def test_report_temporary_of_a_killed_run_is_swept_by_the_next_run(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    report = tmp_path / "run.json"
    stale = tmp_path / "run.json.geomask-999999999-0a1b2c3d.partial"  # a PID above any pid_max
    stale.write_text('{"scenes": [')
    assert _run(str(pipeline), "-q", "--report", str(report))[0] == 0
    assert not stale.exists()
    assert "geomask_version" in json.loads(report.read_text())


def test_progress_bars_on_a_terminal_and_plain_lines_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal console the observer draws rich bars and prints the scene lines through them;
    with --quiet (progress=False) or a stdout that is not a terminal it prints plain lines and makes
    no rich display at all (rich is then not imported by a run)."""
    import io

    from rich.console import Console

    from geomask.cli.progress import CliObserver
    from geomask.spec import SceneReport

    report = SceneReport("a.tif", "b.tif", "done", pixels_selected=3, pixels_changed=2, seconds=0.1)
    screen = io.StringIO()
    with CliObserver(2, console=Console(file=screen, force_terminal=True, width=120)) as bars:
        bars.scene_started("a.tif", 4)
        bars.window_done("a.tif", 4)
        bars.scene_finished(report)
    assert bars.enabled and "done    a.tif -> b.tif: 3 pixels selected, 2 changed" in screen.getvalue()
    assert capsys.readouterr().out == ""
    for observer in (CliObserver(2, progress=False), CliObserver(2)):  # --quiet; stdout captured: no TTY
        with observer:
            observer.scene_started("a.tif", 4)
            observer.window_done("a.tif", 4)
            observer.scene_finished(report)
        assert not observer.enabled and observer._progress is None
        assert capsys.readouterr().out == "done    a.tif -> b.tif: 3 pixels selected, 2 changed (0.1 s)\n"


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("3", "3")])
def test_command_gives_numpy_blas_one_thread_unless_set(preset: str | None, expected: str) -> None:
    """The command line asks OpenBLAS for one thread before numpy loads (its idle threads spin
    ~0.1 s of CPU at import); a value the user set is kept. Checked in a fresh interpreter, where
    numpy is not imported yet, through the command's own entry (``run_command``)."""
    script = (
        "import os, sys\n"
        "from geomask.cli import run_command\n"
        "assert 'numpy' not in sys.modules\n"
        "code = run_command(['kernels'])\n"
        "import numpy\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), code, flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{expected} 0"
