"""Section 2: peak RSS of ``geomask run`` on scenes of 1, 4 and 10 GB (uncompressed)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import Context, gib, job, table
from benchmarks.scene import make_big_scene, make_rois

LIMIT_MB = 600


def run(ctx: Context) -> str:
    """``geomask run`` (configs/local.yaml settings) on ever larger scenes: memory must stay flat."""
    sizes = (0.25, 1.0) if ctx.quick else (1.0, 4.0, 10.0)
    rows = []
    peaks = []
    for gb in sizes:
        started = time.perf_counter()
        scene = make_big_scene(gb)
        rois = make_rois(scene)
        made = time.perf_counter() - started
        with tempfile.TemporaryDirectory(dir=scene.parent) as tmp:
            m = job("geomask", scene, rois, Path(tmp) / "out.tif", threads=ctx.threads)
        side = scene.stem.split("_")[1]
        if m.error:
            rows.append([f"{gb:g}", side, f"{gib(scene):.2f}", f"failed: {m.error}", "", ""])
            continue
        peaks.append(m.peak_mib * 2**20 / 1e6)
        rows.append(
            [f"{gb:g}", side, f"{gib(scene):.2f}", f"{m.seconds:.1f}", f"{m.peak_mib:.0f}", f"{made:.0f}"]
        )
        print(f"(memory: {gb:g} GB scene done)", flush=True)
    out = [
        f"## 2. Memory: peak RSS of `geomask run` (5x5 gaussian, 60 ROIs ~3%, {ctx.threads} threads, "
        "window 1024, GDAL_CACHEMAX 512), uncompressed 3-band uint16 scenes, DEFLATE output",
        "",
        table(
            ["scene GB", "pixels", "file GiB", "seconds", "peak RSS MiB", "scene made / cached (s)"],
            rows,
        ),
    ]
    if len(peaks) == len(sizes):
        flat = max(peaks) <= 1.25 * min(peaks)
        ok = flat and max(peaks) < LIMIT_MB
        ctx.target(
            "2 memory",
            f"peak RSS flat and < {LIMIT_MB} MB ({', '.join(f'{g:g}' for g in sizes)} GB)",
            " / ".join(f"{p:.0f}" for p in peaks) + " MB",
            ok,
        )
    else:
        ctx.target("2 memory", f"peak RSS flat and < {LIMIT_MB} MB", "failed", None)
    return "\n".join(out)
