"""Section 7: start-up, the fastest of 10 runs of each command (a fresh interpreter every time)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Context, table

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 0.3
RUNS = 10


def _seconds(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return times


def run(ctx: Context) -> str:
    """``geomask --help``, ``geomask validate`` on the demo pipeline and ``import geomask``, vs peers."""
    py = sys.executable
    rio = shutil.which("rio", path=str(Path(py).parent))
    jobs = {
        "python -c pass": [py, "-c", "pass"],
        "import geomask": [py, "-c", "import geomask"],
        "geomask --help": [py, "-m", "geomask", "--help"],
        "geomask validate pipelines/roi_denoise.yaml": [
            py,
            "-m",
            "geomask",
            "validate",
            "pipelines/roi_denoise.yaml",
        ],
        "python -c 'import rasterio'": [py, "-c", "import rasterio"],
    }
    if rio:
        jobs["rio --help"] = [rio, "--help"]
    results: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(2):  # two passes, interleaved: the machine's noise hits every command alike
        for name, args in jobs.items():
            results[name] += _seconds(args, RUNS // 2)
    rows = [
        [name, f"{min(t):.3f}", f"{sorted(t)[len(t) // 2]:.3f}", f"{max(t):.3f}"]
        for name, t in results.items()
    ]
    for name in ("import geomask", "geomask --help", "geomask validate pipelines/roi_denoise.yaml"):
        best = min(results[name])
        ctx.target("7 start-up", f"{name} <= {LIMIT_S} s", f"{best:.3f} s", best <= LIMIT_S)
    return "\n".join(
        [
            f"## 7. Start-up: seconds of a fresh process, {RUNS} runs each (min, median, max)",
            "",
            table(["command", "min s", "median s", "max s"], rows),
        ]
    )
