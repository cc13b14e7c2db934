"""Section 6: a batch of small scenes, and the same batch on the process pool.

20 scenes 1024x1024x3 uint16 (tiled 512, DEFLATE), the 60 ROIs of :func:`make_rois`, a 5x5 gaussian:
``geomask run`` on a glob (one process, threads and processes) against the same 20 files copied by
``rasterio.shutil.copy`` (same creation options) in a loop in one Python process, and against the
batch's bound (:func:`benchmarks.jobs.batch_bound`: the imports, the ROI read and the tiles' decoding
and encoding a run cannot avoid). Each timing is the whole process (interpreter start and imports
included); the jobs run interleaved.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import Context, Measure, best, job, table
from benchmarks.scene import CACHE, make_rois, make_scene

SCENES = 20


def make_batch(count: int = SCENES, size: int = 1024) -> tuple[Path, Path]:
    """``count`` copies of the ``size`` benchmark scene in ``.cache/batchN/`` (a glob) and their ROIs."""
    scene = make_scene(size)
    folder = CACHE / f"batch{count}_{size}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"scene_{i:02d}.tif"
        if not path.exists():
            shutil.copyfile(scene, path)
    return folder / "scene_*.tif", make_rois(scene)


def _measure(
    name: str, scenes: Path, rois: Path, threads: int, scheduler: str = "threads", twice: bool = False
) -> Measure:
    """One process of the job ``name``; ``twice``: the job runs twice in it (``BENCH_TWICE``)."""
    env = {"BENCH_SCHEDULER": scheduler} | ({"BENCH_TWICE": "1"} if twice else {})
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        return job(name, scenes, rois, Path(tmp), threads=threads, env=env)


def _start_up(scenes: Path, rois: Path, threads: int) -> list[str]:
    """What start-up costs each batch job: each runs twice in one process (once each, after the
    timed rows); the second run has every import done and every file cached."""
    rows = []
    for name in ("gdal_copy_batch", "batch_bound", "batch_core", "geomask_batch"):
        m = _measure(name, scenes, rois, threads, twice=True)
        if m.error:
            rows.append([name, f"failed: {m.error}", "", "", ""])
            continue
        second = m.info["second"]
        before = m.seconds - second  # the interpreter, the imports and the first run
        rows.append(
            [name, f"{m.seconds:.2f}", f"{m.info['first']:.2f}", f"{second:.2f}", f"{before - second:.2f}"]
        )
    return [
        "",
        "Start-up: each job run twice in one process (one process each). first / second: the runs in "
        "the job (imports in the first); start-up: the whole process minus two second runs (the "
        "interpreter, the imports, first use of every cache).",
        "",
        table(["job", "whole process", "first run", "second run", "start-up"], rows),
    ]


def run(ctx: Context) -> str:
    """The 20-scene batch: geomask (threads, processes) vs GDAL's copy in a loop and geomask's bound."""
    scenes, rois = make_batch()
    _measure("geomask_batch", scenes, rois, ctx.threads)  # untimed: numba cache and file cache
    names = ("gdal_copy_batch", "batch_bound", "batch_core", "geomask_batch", "geomask_batch_processes")
    runs: dict[str, list[Measure]] = {n: [] for n in names}
    for _ in range(ctx.repeat):
        runs["gdal_copy_batch"].append(_measure("gdal_copy_batch", scenes, rois, ctx.threads))
        runs["batch_bound"].append(_measure("batch_bound", scenes, rois, ctx.threads))
        runs["batch_core"].append(_measure("batch_core", scenes, rois, ctx.threads))
        runs["geomask_batch"].append(_measure("geomask_batch", scenes, rois, ctx.threads))
        runs["geomask_batch_processes"].append(
            _measure("geomask_batch", scenes, rois, ctx.threads, scheduler="processes")
        )
    res = {n: best(r) for n, r in runs.items()}
    copy, threads, procs = res["gdal_copy_batch"], res["geomask_batch"], res["geomask_batch_processes"]
    rows = []
    for n in names:
        m = res[n]
        spread = ", ".join(f"{r.seconds:.2f}" for r in runs[n] if r.error is None) or f"failed: {m.error}"
        ratio = f"{m.seconds / copy.seconds:.2f}x" if not (m.error or copy.error) else ""
        rows.append([n, f"{m.seconds:.2f}" if not m.error else "failed", spread, f"{m.peak_mib:.0f}", ratio])
    out = [
        f"## 6. Batch: {SCENES} scenes 1024x1024x3 uint16, tiled 512, DEFLATE; 60 ROIs; 5x5 gaussian; "
        f"{ctx.threads} threads",
        "",
        f"seconds: the whole process, best of {ctx.repeat} (all runs beside it, interleaved); "
        "gdal_copy_batch: `rasterio.shutil.copy` of each file in a loop in one process; "
        "batch_bound: what a geomask run must do at minimum in one process (import rasterio, "
        "pyogrio/geopandas and geomask's config models, read the ROI file once, decode and re-encode "
        "every scene's tiles, two scenes in flight); batch_core: that plus the work itself by hand "
        "(ROIs reprojected and rasterized per scene, the filter applied with geomask's array API): "
        "geomask_batch minus it is what geomask's run adds (planning, windows, checks, lock, tags, CLI).",
        "",
        table(["job", "seconds", "runs", "peak RSS MiB", "/ copy loop"], rows),
    ]
    out += _start_up(scenes, rois, ctx.threads)
    bound = res["batch_bound"]
    if not (bound.error or threads.error):
        out += [
            "",
            f"geomask_batch / batch_bound: {threads.seconds / bound.seconds:.2f}x "
            f"({threads.seconds - bound.seconds:+.2f} s: geomask's planning, masks, filter, checks, "
            "lock, tags, CLI and the rest of its imports).",
        ]
    core = res["batch_core"]
    if not (core.error or threads.error or copy.error):
        out += [
            f"batch_core / copy loop: {core.seconds / copy.seconds:.2f}x (the mask and filter added to the "
            f"bound: {core.seconds - bound.seconds:+.2f} s); geomask_batch / batch_core: "
            f"{threads.seconds / core.seconds:.2f}x ({threads.seconds - core.seconds:+.2f} s: what "
            "geomask's run adds).",
        ]
    if not (copy.error or threads.error):
        r = threads.seconds / copy.seconds
        ctx.target("6 batch", "geomask batch <= 1.0x the copy loop", f"{r:.2f}x", r <= 1.0)
    else:
        ctx.target("6 batch", "geomask batch <= 1.0x the copy loop", "failed", None)
    if not (procs.error or threads.error):
        r = procs.seconds / threads.seconds
        ctx.target("6 batch", "--scheduler processes <= 1.3x threads", f"{r:.2f}x", r <= 1.3)
    else:
        ctx.target("6 batch", "--scheduler processes <= 1.3x threads", "failed", None)
    return "\n".join(out)
