"""``make bench``: end-to-end and kernel-core benchmarks, one table, ratios against the anchors.

Usage: ``python -m benchmarks [--size 8192] [--skip-core] [--skip-e2e]``. Results are printed
and appended to nothing: copy the table into benchmarks/RESULTS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.cluster import run as cluster_speedup
from benchmarks.scene import make_rois, make_scene


def run_job(name: str, scene: Path, rois: Path, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.tif"
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.jobs", name, str(scene), str(rois), str(out), str(threads)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        return {"job": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def end_to_end(size: int) -> None:
    print(
        f"## End to end: {size}x{size}x3 uint16, tiled 512, DEFLATE; 60 ROIs (~3%) in EPSG:4326; 5x5 gaussian"
    )
    t = time.perf_counter()
    scene = make_scene(size)
    rois = make_rois(scene)
    print(f"(scene ready in {time.perf_counter() - t:.1f} s: {scene})")
    threads = os.cpu_count() or 1
    jobs = ["gdal_copy", "geomask", "opencv"]
    if importlib.util.find_spec("rioxarray") and importlib.util.find_spec("dask_image"):
        jobs.append("rioxarray_daskimage")
    results = {name: run_job(name, scene, rois, threads) for name in jobs}
    one = run_job("geomask", scene, rois, 1)
    g = results["geomask"]
    print("| job | seconds | peak RSS MiB | geomask / job |\n|---|---|---|---|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | |")
            continue
        ratio = g["seconds"] / r["seconds"] if "seconds" in g else float("nan")
        print(f"| {name} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {ratio:.2f}x |")
    if "seconds" in one and "seconds" in g:
        print(
            f"\nScaling: geomask 1 thread {one['seconds']:.2f} s, {threads} threads {g['seconds']:.2f} s: "
            f"speedup {one['seconds'] / g['seconds']:.2f}x"
        )


def kernel_core(size: int = 4096) -> None:
    import cv2
    import scipy.ndimage as ndi

    from geomask.convolve import masked_convolve
    from geomask.kernels import get

    print(f"\n## Kernel core in memory: {size}x{size} float32; seconds (OpenCV / geomask ratio)")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(size, size)).astype(np.float32)
    kernels = {
        "3x3": get("box", size=3),
        "5x5": get("gaussian", sigma=1.0, radius=2),
        "15x15": get("gaussian", sigma=2.5, radius=7),
        "31x31": get("gaussian", sigma=5.0, radius=15),
    }
    print(
        "| cover | kernel | geomask | OpenCV+composite | scipy+composite | OpenCV/geomask |\n"
        "|---|---|---|---|---|---|"
    )
    for cover in (0.001, 0.01, 0.1, 0.5):
        mask = rng.random(a.shape) < cover
        for label, k in kernels.items():
            masked_convolve(a[:64, :64], k, mask[:64, :64])  # compile outside the timing
            t = time.perf_counter()
            masked_convolve(a, k, mask)
            tg = time.perf_counter() - t
            t = time.perf_counter()
            r = cv2.filter2D(a, -1, k.weights.astype(np.float32)[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
            out = a.copy()
            out[mask] = r[mask]
            tc = time.perf_counter() - t
            t = time.perf_counter()
            r = ndi.convolve(a, k.weights.astype(np.float32))
            out = a.copy()
            out[mask] = r[mask]
            ts = time.perf_counter() - t
            print(f"| {cover:.1%} | {label} | {tg:.3f} | {tc:.3f} | {ts:.3f} | {tc / tg:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--size", type=int, default=8192, help="end-to-end scene side in pixels (default 8192)"
    )
    parser.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end table")
    parser.add_argument("--skip-core", action="store_true", help="skip the kernel-core table")
    args = parser.parse_args()
    print(
        f"# geomask benchmarks, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    if not args.skip_e2e:
        end_to_end(args.size)
    if not args.skip_core:
        kernel_core()
    cluster_speedup()


if __name__ == "__main__":
    main()
