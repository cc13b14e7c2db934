"""Section 8: cold start, a first ``geomask run`` with empty compile caches (issue 19, item 3).

Each case is one fresh process with its own empty kernel cache (``GEOMASK_CACHE_DIR``) and numba
cache (``NUMBA_CACHE_DIR``), timed whole (interpreter start, imports, building the C kernels for
the run's pixel type, the run). The same command again with the caches it filled is the warm time.
The numba row is the build used before the C kernels (``GEOMASK_KERNELS=numba``), for comparison.
No install-time step builds anything: the first run builds what it needs, inside the time shown.
geomask's own bytecode (``__pycache__``) is removed before each cold run, as in a fresh clone; the
installed libraries keep theirs (pip compiles them when it installs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Context, table

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 5.0


def _pipeline(folder: Path, name: str, kernel: str, scene: Path) -> Path:
    text = (
        f"input: {scene}\n"
        f"mask: {{vector: {ROOT / 'data' / 'roi_fields.geojson'}}}\n"
        f"kernel: {kernel}\n"
        f"output: {{path: {folder / (name + '.tif')}}}\n"
    )
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def _float_scene(folder: Path) -> Path:
    import rasterio

    src_path = ROOT / "data" / "RGB.byte.tif"
    with rasterio.open(src_path) as src:
        profile = src.profile | {"dtype": "float32", "nodata": None}
        data = src.read().astype(np.float32) / 255.0
    out = folder / "RGB.float32.tif"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


def _timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return seconds


def run(ctx: Context) -> str:
    """The cold and warm seconds of the first run of each kernel path a user meets first."""
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory(prefix="geomask-cold-") as tmp:
        folder = Path(tmp)
        scene = ROOT / "data" / "RGB.byte.tif"
        cases = {
            "demo pipeline (gaussian, uint8)": ROOT / "pipelines" / "roi_denoise.yaml",
            "median 5x5 (uint8)": _pipeline(folder, "median", "{name: median, size: 5}", scene),
            "kernels_by (class_sharpen.yaml)": ROOT / "pipelines" / "class_sharpen.yaml",
            "a new dtype (float32 gaussian)": _pipeline(
                folder, "f32", "{name: gaussian, sigma: 1}", _float_scene(folder)
            ),
        }
        jobs = [(name, path, "auto") for name, path in cases.items()]
        jobs.append(
            ("demo pipeline, numba's build (before)", cases["demo pipeline (gaussian, uint8)"], "numba")
        )
        for i, (name, path, kernels) in enumerate(jobs):
            caches = folder / f"cache{i}"
            env = {
                **os.environ,
                "GEOMASK_CACHE_DIR": str(caches / "geomask"),
                "NUMBA_CACHE_DIR": str(caches / "numba"),
                "GEOMASK_KERNELS": kernels,
            }
            args = [py, "-m", "geomask", "run", str(path), "--overwrite"]
            for pyc in (ROOT / "geomask").rglob("__pycache__/*.pyc"):
                pyc.unlink()
            cold = _timed(args, env)
            warm = _timed(args, env)
            rows.append([name, kernels, f"{cold:.2f}", f"{warm:.2f}"])
            if kernels == "auto":
                ctx.target(
                    "19 cold start", f"{name}: first run <= {LIMIT_S:.0f} s", f"{cold:.2f} s", cold <= LIMIT_S
                )
    return "\n".join(
        [
            "## 8. Cold start: a first `geomask run` with empty kernel caches, whole process (seconds)",
            "",
            table(["run", "kernels", "cold s", "warm s"], rows),
            "",
            "No install step builds anything ahead: the cold time includes building the C kernels.",
        ]
    )
