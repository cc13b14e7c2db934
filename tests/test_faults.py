"""Faults survived: SIGKILL, SIGINT/SIGTERM, a full disk, two runs at once, leftovers at the output path.

The kill and interrupt cases run a real ``geomask run`` process on a scene made here (2048 x 2048
uint16, tiled, written through a 1 MB GDAL cache so tiles reach the temporary file while the run
goes on), small windows so the run lasts a few seconds, and interrupt it once its temporary
``*.partial`` file has grown. A rerun must then equal an uninterrupted run byte for byte.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from _fixtures_cli import SCENE_CRS, SCENE_TRANSFORM, make_project, make_scene, mounted_tmpfs, write_yaml
from typer.testing import CliRunner

import geomask.output.writer
from geomask.cli import app
from geomask.lock import lock_path, output_lock
from geomask.output.check import read_tags

pytestmark = pytest.mark.slow  # subprocesses started and signalled: see pyproject's markers

DATA = Path(__file__).parent / "data"
SIDE = 2048
WINDOW = "128"
CLI = [sys.executable, "-c", "from geomask.cli import main; main()"]

runner = CliRunner()


def _big_project(folder: Path, scenes: tuple[str, ...] = ("big",), small: tuple[str, ...] = ()) -> Path:
    """Scenes (big ones take a few seconds, small ones a moment), a pipeline over all of them, a profile."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in").mkdir()
    rng = np.random.default_rng(7)
    for name in scenes:
        data = rng.integers(1, 5000, size=(1, SIDE, SIDE)).astype("uint16")
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": SIDE,
            "height": SIDE,
            "count": 1,
            "dtype": "uint16",
            "nodata": 0,
            "crs": SCENE_CRS,
            "transform": SCENE_TRANSFORM,
            "tiled": True,
            "blockxsize": 128,
            "blockysize": 128,
        }
        with rasterio.open(folder / "in" / f"{name}.tif", "w", **profile) as dst:
            dst.write(data)
    for name in small:
        make_scene(folder / "in" / f"{name}.tif")
    write_yaml(folder / "profile.yaml", "gdal: {GDAL_CACHEMAX: 1}\nscheduler: threads\nworkers: 2\n")
    return write_yaml(
        folder / "pipeline.yaml",
        {
            "input": "in/*.tif",
            "kernel": {"name": "sharpen", "amount": 0.5},
            "output": {"path": "out/{stem}.tif", "compress": "deflate"},
        },
    )


def _command(pipeline: Path, *extra: str) -> list[str]:
    profile = pipeline.parent / "profile.yaml"
    return [*CLI, "run", str(pipeline), "-q", "--window-size", WINDOW, "--profile", str(profile), *extra]


def _run(pipeline: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(pipeline, *extra), capture_output=True, text=True, check=False, timeout=300
    )


def _start(pipeline: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(pipeline, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_partial(folder: Path, proc: subprocess.Popen[str], min_bytes: int = 200_000) -> Path:
    """Wait until the run's temporary file exists and has grown past ``min_bytes`` (tiles written)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before it could be interrupted (rc {proc.returncode}): {out} {err}")
        partials = list(folder.glob("*.partial")) if folder.exists() else []
        for p in partials:
            try:
                if p.stat().st_size >= min_bytes:
                    return p
            except FileNotFoundError:
                continue
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no growing *.partial file appeared within 120 s")


def _reference(pipeline: Path, output: Path) -> bytes:
    """The bytes of an uninterrupted run's output (then removed, so the next run starts afresh)."""
    done = _run(pipeline)
    assert done.returncode == 0, done.stderr
    data = output.read_bytes()
    output.unlink()
    return data


def test_sigkill_leaves_nothing_at_the_output_and_rerun_is_identical(tmp_path: Path) -> None:
    pipeline = _big_project(tmp_path)
    out = tmp_path / "out"
    output = out / "big.tif"
    reference = _reference(pipeline, output)

    proc = _start(pipeline)
    partial = _wait_for_partial(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not output.exists()
    # The leftover is clearly named after the output and the dead process ...
    assert partial.exists() and partial.name.startswith(f"big.tif.geomask-{proc.pid}-")
    # ... and, though it may open as a GeoTIFF, it carries no provenance: never taken for an output.
    tags = read_tags(partial) or {}
    assert not any(k.startswith("GEOMASK_") for k in tags)
    assert lock_path(output).exists()  # the lock file stays, its flock died with the process

    rerun = _run(pipeline)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith("done ")
    assert output.read_bytes() == reference
    assert sorted(p.name for p in out.iterdir()) == ["big.tif"]  # partial and lock file gone


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_cleanly_and_says_what_finished(tmp_path: Path, sig: signal.Signals) -> None:
    """Two scenes: the small one finishes, the big one is interrupted mid-write."""
    pipeline = _big_project(tmp_path, scenes=("big",), small=("a_small",))
    out = tmp_path / "out"
    rerun_too = sig == signal.SIGINT  # the rerun is the same after either signal: checked once
    if rerun_too:
        reference = _reference(pipeline, out / "big.tif")
        small_before = (out / "a_small.tif").read_bytes()
        (out / "a_small.tif").unlink()

    proc = _start(pipeline)
    _wait_for_partial(out, proc)
    # Two small scenes run at once (geomask.executors.scenes): the big one's partial can appear before
    # the small one is committed; interrupt once the small one is in place and the big one is not.
    deadline = time.monotonic() + 60
    while not (out / "a_small.tif").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert (out / "a_small.tif").exists() and not (out / "big.tif").exists()
    sent = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - sent
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop"
    assert proc.returncode == 128 + sig
    assert (
        stdout
        == f"done    {tmp_path / 'in' / 'a_small.tif'} -> {out / 'a_small.tif'}" + stdout[stdout.index(":") :]
    )
    # The small scene's sharpen clips some results to 0, its nodata: one warning line says so.
    lines = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(
        f"error: interrupted by {sig.name}: 1 of 2 scene(s) finished (1 done, listed above)"
    )
    assert "run the same command again" in stderr
    # The finished scene is kept; nothing else is left: no output, no partial, no lock file.
    assert sorted(p.name for p in out.iterdir()) == ["a_small.tif"]
    if not rerun_too:
        return
    assert (out / "a_small.tif").read_bytes() == small_before

    rerun = _run(pipeline)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines()[0].startswith("skipped ")  # a_small: current
    assert (out / "big.tif").read_bytes() == reference


def test_two_runs_at_once_do_not_corrupt_each_other(tmp_path: Path) -> None:
    """Both started together: one writes, the other finds the lock and says who holds it (exit 1)."""
    pipeline = _big_project(tmp_path)
    output = tmp_path / "out" / "big.tif"
    reference = _reference(pipeline, output)
    first, second = _start(pipeline), _start(pipeline)
    results = [(p, *p.communicate(timeout=300)) for p in (first, second)]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 1], [(p.returncode, err) for p, _, err in results]
    winner = next(r for r in results if r[0].returncode == 0)
    loser = next(r for r in results if r[0].returncode == 1)
    assert winner[1].startswith("done ")
    assert loser[2] == (
        f"error: {output}: another geomask run (pid {winner[0].pid}) is writing this output; wait for it "
        "to finish and rerun (its finished outputs are skipped), or give this run another output.path\n"
    )
    assert output.read_bytes() == reference
    assert sorted(p.name for p in output.parent.iterdir()) == ["big.tif"]
    again = _run(pipeline)  # after the winner: current, skipped
    assert again.returncode == 0 and again.stdout.startswith("skipped ")


def test_lock_held_by_another_process_is_reported(tmp_path: Path) -> None:
    """This test process holds the output's lock (a real flock); a `geomask run` process is refused."""
    pipeline = make_project(tmp_path)
    output = tmp_path / "out" / "scene.denoised.tif"
    with output_lock(output):
        done = subprocess.run([*CLI, "run", str(pipeline)], capture_output=True, text=True, check=False)
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: {output}: another geomask run (pid {os.getpid()}) is writing")
        assert done.stderr.count("\n") == 1
        assert not output.exists()
    assert not lock_path(output).exists()
    done = subprocess.run([*CLI, "run", str(pipeline)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]


def test_lock_found_before_its_holder_wrote_its_pid_still_names_it(tmp_path: Path) -> None:
    """The holder writes its PID just after taking the lock: a run that finds the lock in that moment
    waits for the PID (it was a race in test_two_runs_at_once_do_not_corrupt_each_other)."""
    import fcntl
    import threading

    from geomask.errors import OutputLockedError

    output = tmp_path / "out" / "x.tif"
    output.parent.mkdir()
    fd = os.open(lock_path(output), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        late = threading.Timer(0.15, lambda: os.pwrite(fd, b"4242\n", 0))
        late.start()
        pattern = r"another geomask run \(pid 4242\) is writing"
        with pytest.raises(OutputLockedError, match=pattern), output_lock(output):
            pass
        late.join()
    finally:
        os.close(fd)


def test_stale_lock_file_of_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    output = tmp_path / "out" / "scene.denoised.tif"
    output.parent.mkdir()
    lock_path(output).write_text("999999999\n")  # left by a killed process: nobody holds its flock
    result = runner.invoke(app, ["run", str(pipeline), "-q"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture(params=["tmpfs", "injected"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | None]:
    """A real 1 MiB tmpfs, or None: ENOSPC injected at the rasterio boundary instead."""
    if request.param == "injected":
        yield None
        return
    mount = tmp_path / "small"
    mount.mkdir()
    with mounted_tmpfs(mount, "size=1m", "a 1 MiB tmpfs") as mounted:
        yield mounted


class _NoSpaceWriter:
    """A rasterio dataset for writing whose writes fail with ENOSPC, as on a full disk."""

    def __init__(self, ds: Any) -> None:
        self._ds = ds

    def write(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_ds":
            object.__setattr__(self, name, value)
        else:
            setattr(self._ds, name, value)


def test_disk_full_says_so_and_removes_the_partial(
    tmp_path: Path, small_disk: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 MB of random uint16 (deflate cannot shrink it) to a 1 MiB file system."""
    folder = small_disk if small_disk is not None else tmp_path / "out"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 65535, size=(1, 1024, 1024)).astype("uint16")
    with rasterio.open(
        tmp_path / "scene.tif",
        "w",
        driver="GTiff",
        width=1024,
        height=1024,
        count=1,
        dtype="uint16",
        crs=SCENE_CRS,
        transform=SCENE_TRANSFORM,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as dst:
        dst.write(data)
    pipeline = write_yaml(
        tmp_path / "p.yaml",
        {
            "input": "scene.tif",
            "kernel": {"name": "sharpen", "amount": 0.05},
            "output": {"path": str(folder / "o.tif")},
        },
    )
    if small_disk is None:  # no tmpfs here: ENOSPC injected at the rasterio boundary
        real_open = geomask.output.writer.rasterio.open

        def open_full(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            ds = real_open(path, mode, *args, **kwargs)
            return _NoSpaceWriter(ds) if mode == "w" else ds

        monkeypatch.setattr(geomask.output.writer.rasterio, "open", open_full)
    result = runner.invoke(app, ["run", str(pipeline), "-q", "--window-size", "256"])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    err = result.stderr
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {folder / 'o.tif'}: ")
    assert "the disk is full" in err and "the partial file is removed" in err
    assert not folder.exists() or list(folder.iterdir()) == []  # a folder made for it is removed too


# --- resume does not trust a file that only exists and opens --------------------------------------


@pytest.mark.skipif(not (DATA / "all-nodata.tif").exists(), reason="tests/data/all-nodata.tif is missing")
def test_all_nodata_geotiff_at_the_output_is_not_taken_as_done(tmp_path: Path) -> None:
    """A valid, readable GeoTIFF whose every pixel is nodata (tests/data/all-nodata.tif, from rasterio's
    test data) at the output path, without geomask's provenance tags: refused without --overwrite
    (exit 2, the file untouched), redone with it."""
    pipeline = make_project(tmp_path)
    output = tmp_path / "out" / "scene.denoised.tif"
    output.parent.mkdir()
    leftover = (DATA / "all-nodata.tif").read_bytes()
    output.write_bytes(leftover)
    with rasterio.open(output) as ds:  # it does open and read
        assert ds.read(1, window=((0, 64), (0, 64))).max() == 0 and ds.nodata == 0
    result = runner.invoke(app, ["run", str(pipeline), "-q"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {output}: a file that geomask did not write (or that does not read) is at the output "
        "path; pass --overwrite (overwrite: true) to replace it, or choose another output.path\n"
    )
    assert output.read_bytes() == leftover
    result = runner.invoke(app, ["run", str(pipeline), "-q", "--overwrite"])
    assert result.exit_code == 0, result.stderr
    assert read_tags(output)["GEOMASK_VERSION"]


def test_killed_writers_leftover_moved_to_the_output_is_not_taken_as_done(tmp_path: Path) -> None:
    """Even a killed run's temporary file (opens, all nodata) put at the output path by hand has no
    provenance tags: geomask writes them only when the file is complete."""
    pipeline = _big_project(tmp_path)
    out = tmp_path / "out"
    proc = _start(pipeline)
    partial = _wait_for_partial(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    output = out / "big.tif"
    partial.rename(output)
    with rasterio.open(output) as ds:
        assert ds.count == 1 and (ds.width, ds.height) == (SIDE, SIDE)
    rerun = _run(pipeline)
    assert rerun.returncode == 2
    assert rerun.stderr.startswith(f"error: {output}: a file that geomask did not write")
    assert (_run(pipeline, "--overwrite")).returncode == 0
    assert read_tags(output)["GEOMASK_VERSION"]


def test_ctrl_c_to_the_process_group_with_worker_processes(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals every process of the group, worker processes included: the run
    still stops within seconds with one line (workers ignore SIGINT; the driver stops them)."""
    pipeline = _big_project(tmp_path)
    out = tmp_path / "out"
    command = [*_command(pipeline), "--scheduler", "processes", "--workers", "2"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    _wait_for_partial(out, proc, min_bytes=1)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130, stderr
    assert stderr.startswith("error: interrupted by SIGINT: 0 of 1 scene(s) finished;")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr and stdout == ""
    assert not out.exists() or list(out.iterdir()) == []


_CONTENDER = """
import sys, time
from pathlib import Path
from geomask.errors import OutputLockedError
from geomask.lock import output_lock
output, counter = Path(sys.argv[1]), Path(sys.argv[2])
done = 0
while done < 25:
    try:
        with output_lock(output):
            value = int(counter.read_text())  # read, pause, write: lost updates unless exclusive
            time.sleep(0.0005)
            counter.write_text(str(value + 1))
        done += 1
    except OutputLockedError:
        time.sleep(0.0002)
"""


def test_lock_is_exclusive_under_contention(tmp_path: Path) -> None:
    """Three processes take and release one output's lock 25 times each, racing on its removal and
    re-creation; a counter updated without atomicity inside the lock loses no update."""
    output, counter = tmp_path / "out" / "x.tif", tmp_path / "counter"
    counter.write_text("0")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(output), str(counter)], stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert counter.read_text() == "75"
    assert (
        not output.parent.exists() or list(output.parent.iterdir()) == []
    )  # lock file removed by the last holder


_PARTIAL_RESULT = """
import gc, os, struct, sys, time
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from geomask.executors.local import _process_pool

def send_half_a_result(flag):
    # What a worker killed mid-send leaves: a message header promising 1 MB, then 10 bytes.
    (queue,) = [o for o in gc.get_objects() if isinstance(o, SimpleQueue)]
    os.write(queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"0123456789")
    Path(flag).touch()
    time.sleep(600)

if __name__ == "__main__":
    flag = Path(sys.argv[1])
    try:
        with _process_pool(2) as pool:
            pool.submit(send_half_a_result, str(flag))
            while not flag.exists():
                time.sleep(0.01)
            time.sleep(0.2)  # the pool's manager thread is now waiting for the rest of the message
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("stopped")
"""


def test_pool_stops_when_a_worker_dies_mid_result(tmp_path: Path) -> None:
    """A worker terminated while it sends a result leaves half a message in the pool's result pipe;
    stopping the pool (Ctrl-C, a failed write) must still return at once, not wait for the rest."""
    script = tmp_path / "partial_result.py"
    script.write_text(_PARTIAL_RESULT)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "sent")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stopped\n"
    assert time.monotonic() - started < 30
