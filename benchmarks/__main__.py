"""``make bench`` (``python -m benchmarks``): geomask against its peers, one report, targets at the end.

Usage: ``python -m benchmarks [--quick] [--only e2e,memory,core,cluster] [--repeat N] [--out FILE]``.

Sections run in the order of :data:`SECTIONS`; each is a function ``f(ctx) -> str`` that returns
its markdown and records its targets with ``ctx.target(...)``. A section whose module does not
exist is skipped. Scenes are generated once
(deterministic) and cached in ``benchmarks/.cache``. Timings never go in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Context, table


def _cluster(ctx: Context) -> str:
    """Adapter for ``benchmarks/cluster.py`` (the CLUSTER helper's), which prints its own table."""
    from benchmarks.cluster import run

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        timings = run(scenes=4 if ctx.quick else 8, size=1024)
    speedup = timings["speedup"]
    ctx.target("5 cluster", "local-cluster: 2 workers >= 1.8x 1 worker", f"{speedup:.2f}x", speedup >= 1.8)
    by_scene, share = timings["speedup_scenes"], timings["bytes_per_scene"] / timings["pixel_bytes"]
    ctx.target("20 scale", "by scene: 2 workers >= 1.8x 1 worker", f"{by_scene:.2f}x", by_scene >= 1.8)
    ctx.target("20 scale", "by scene: client bytes < 1% of pixel bytes", f"{100 * share:.4f} %", share < 0.01)
    return text.getvalue().strip()


#: (name, module, function): the report's sections, in order. Each function takes the
#: :class:`~benchmarks.common.Context`, returns its markdown and records its targets with
#: ``ctx.target(...)``. Scaling (section 4) runs with section 1. A section whose module is
#: missing is skipped.
SECTIONS: list[tuple[str, str, str]] = [
    ("e2e", "benchmarks.e2e", "run"),
    ("memory", "benchmarks.memory", "run"),
    ("core", "benchmarks.core", "run"),
    ("cluster", "benchmarks.cluster", "_cluster"),
    ("batch", "benchmarks.batch", "run"),
    ("startup", "benchmarks.startup", "run"),
    ("coldstart", "benchmarks.coldstart", "run"),
]


def machine() -> str:
    """One line: date, CPU model, cores, memory, Python and GDAL versions."""
    import rasterio

    cpu = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        names = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}, GDAL {rasterio.__gdal_version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller scenes and fewer cases (a few minutes)")
    parser.add_argument("--only", default="", help="comma-separated sections (default: all)")
    parser.add_argument("--repeat", type=int, help="repeats of the timed jobs (default 3, quick 1)")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = wanted - {name for name, _, _ in SECTIONS}
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}: choose from {[n for n, _, _ in SECTIONS]}")
    ctx = Context(quick=args.quick, repeat=args.repeat or (1 if args.quick else 3))
    # Timed processes import geomask as an installed package does: from bytecode. pip compiles it
    # when it installs; an editable checkout writes it on the first import, unless the environment
    # forbids it (PYTHONDONTWRITEBYTECODE, set on some CI and sandbox machines), when every run
    # would compile ~100 modules again. The untimed warm-up of each section writes it.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    report = [f"# geomask benchmarks{' (quick)' if args.quick else ''}", "", machine(), ""]
    print("\n".join(report), flush=True)
    for name, module, function in SECTIONS:
        if wanted and name not in wanted:
            continue
        if importlib.util.find_spec(module) is None:
            print(f"(section {name}: {module} not present, skipped)\n", flush=True)
            continue
        run = (
            globals()[function]
            if function.startswith("_")
            else getattr(importlib.import_module(module), function)
        )
        text = run(ctx)
        print(text + "\n", flush=True)
        report += [text, ""]
    rows = [
        [t.section, t.what, t.measured, {True: "met", False: "MISSED", None: "not measured"}[t.met]]
        for t in ctx.targets
    ]
    summary = "## Targets (issue 5)\n\n" + table(["section", "target", "measured", ""], rows)
    summary += f"\n\nTotal benchmark time {time.perf_counter() - started:.0f} s."
    print(summary, flush=True)
    report.append(summary)
    if args.out:
        args.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    sys.exit(main())
