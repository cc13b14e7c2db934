"""Worker counts: refused above MAX_WORKERS at validation, capped at run time to what the machine holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio
from _fixtures_cli import make_project, write_yaml
from typer.testing import CliRunner

from geomask.capacity import MAX_WORKERS, PROCESS_MEMORY, Capacity, fit_workers, machine
from geomask.cli import app
from geomask.config import load_profile
from geomask.errors import ConfigError, WorkersCappedWarning
from geomask.executors.sizing import fit_options
from geomask.kernels import get as get_kernel
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

runner = CliRunner()
GiB = 1 << 30


def test_machine_reports_cores_and_memory() -> None:
    cap = machine()
    assert cap.cpus >= 1
    assert cap.memory is None or cap.memory > 0


def test_threads_are_capped_at_four_per_core() -> None:
    fitted = fit_workers("threads", 10**6, capacity=Capacity(cpus=2, memory=8 * GiB))
    assert fitted.workers == 8
    assert fitted.note == "workers: 1000000 threads asked for, 8 started (4 per core, 2 cores)"
    assert fit_workers("threads", 8, capacity=Capacity(2, 8 * GiB)) == fit_workers("threads", 8)
    assert fit_workers("threads", None, capacity=Capacity(2, None)).workers is None  # default: one per core


def test_processes_are_capped_by_cores_and_memory() -> None:
    fitted = fit_workers("processes", 1000, capacity=Capacity(cpus=16, memory=1 * GiB))
    assert fitted.workers == GiB // PROCESS_MEMORY == 4
    assert fitted.note is not None and "1000 processes asked for, 4 started" in fitted.note
    assert fit_workers("processes", 1000, capacity=Capacity(cpus=3, memory=64 * GiB)).workers == 3
    # the default (one per core) silently fits in memory
    assert fit_workers("processes", None, capacity=Capacity(cpus=64, memory=1 * GiB)) == fit_workers(
        "processes", 4, capacity=Capacity(cpus=64, memory=1 * GiB)
    )
    # an explicit memory_limit per worker counts when it is larger
    assert fit_workers("local-cluster", 8, None, 4 * GiB, capacity=Capacity(8, 10 * GiB)).workers == 2


def test_local_cluster_threads_are_capped_in_all() -> None:
    fitted = fit_workers("local-cluster", 2, 10**6, capacity=Capacity(cpus=2, memory=8 * GiB))
    assert (fitted.workers, fitted.threads_per_worker) == (2, 4)
    assert fitted.note == (
        "threads_per_worker: 1000000 asked for, 4 started (4 threads per core in all, 2 cores)"
    )


@pytest.mark.parametrize("scheduler", ["synchronous", "tcp://127.0.0.1:8786"])
def test_other_schedulers_are_left_alone(scheduler: str) -> None:
    assert fit_workers(scheduler, 1000, 1000, capacity=Capacity(1, GiB)) == fit_workers(scheduler, 1000, 1000)


def test_fit_options_warns_once_and_is_idempotent() -> None:
    asked = RunOptions(scheduler="threads", workers=MAX_WORKERS)
    limit = 4 * machine().cpus
    if limit >= MAX_WORKERS:
        pytest.skip("a machine with 256 cores or more holds 1024 threads")
    with pytest.warns(WorkersCappedWarning, match=f"{MAX_WORKERS} threads asked for, {limit} started"):
        fitted = fit_options(asked)
    assert fitted.workers == limit
    assert fit_options(fitted) is fitted  # no second warning: filterwarnings=error would raise


@pytest.mark.parametrize("name", ["workers", "threads_per_worker"])
def test_run_options_refuse_more_than_the_ceiling(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be 1..{MAX_WORKERS}, got 1000000"):
        RunOptions(**{name: 10**6})


@pytest.mark.parametrize("name", ["workers", "threads_per_worker"])
def test_profile_refuses_more_than_the_ceiling(tmp_path: Path, name: str) -> None:
    profile = write_yaml(tmp_path / "profile.yaml", {"scheduler": "local-cluster", name: 10**6})
    with pytest.raises(ConfigError, match=f"{name}: input should be less than or equal to {MAX_WORKERS}"):
        load_profile(profile)


def test_cli_refuses_more_workers_than_the_ceiling(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    result = runner.invoke(app, ["run", str(pipeline), "--workers", str(10**6)])
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.stderr and str(MAX_WORKERS) in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_run_with_too_many_threads_is_capped_with_a_warning(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    limit = 4 * machine().cpus
    result = runner.invoke(app, ["run", str(pipeline), "-q", "--workers", str(MAX_WORKERS)])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: workers: {MAX_WORKERS} threads asked for, {limit} started (4 per core, "
        f"{machine().cpus} cores): more would not fit on this machine"
    ]
    assert (tmp_path / "out" / "scene.denoised.tif").exists()


@pytest.mark.slow
def test_processes_beyond_the_machine_start_one_per_core(tmp_path: Path) -> None:
    """Without the cap this started 1024 spawned Python processes."""
    pipeline = make_project(tmp_path)
    del pipeline
    output = tmp_path / "o.tif"
    options = RunOptions(scheduler="processes", workers=MAX_WORKERS, window_size=16, align_windows=False)
    step = Step(get_kernel("box", size=3))
    with pytest.warns(WorkersCappedWarning, match="processes asked for"):
        report = process_scene(tmp_path / "scene.tif", OutputSpec(output), [step], options=options)
    assert report.status == "done" and report.windows_total == 12
    with rasterio.open(output) as ds:
        assert ds.shape == (48, 64)
