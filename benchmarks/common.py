"""What every benchmark section shares: the run context, process measurement, tables, targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Target:
    """One target of issue 5: what, the measured value as text, and whether it is met."""

    section: str
    what: str
    measured: str
    met: bool | None  # None: not measured (a job failed or was skipped)


@dataclass
class Context:
    """Settings of one ``python -m benchmarks`` run, and the targets the sections report."""

    quick: bool = False
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    repeat: int = 3
    targets: list[Target] = field(default_factory=list)

    def target(self, section: str, what: str, measured: str, met: bool | None) -> None:
        self.targets.append(Target(section, what, measured, met))


@dataclass
class Measure:
    """Wall seconds and peak RSS (MiB) of one process, and what it printed last (JSON) if any."""

    seconds: float
    peak_mib: float
    info: dict
    error: str | None = None


def run_process(args: list[str], env: dict[str, str] | None = None) -> Measure:
    """Run ``args`` as a child process: its wall time (interpreter start and imports included)
    and its peak RSS from ``wait4`` (the child and the descendants it waited for)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=full_env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    info: dict = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            info = json.loads(line)
            break
    error = None
    if proc.returncode != 0:
        error = (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]
    return Measure(seconds, usage.ru_maxrss / 1024, info, error)


def job(
    name: str, *args: object, threads: int, pin: bool = False, env: dict[str, str] | None = None
) -> Measure:
    """Run ``python -m benchmarks.jobs NAME ARGS... THREADS`` and measure it.

    ``pin``: run it on the first ``threads`` cores only (``sched_setaffinity``), so a 1-thread
    run cannot borrow a second core for GDAL's or the writer's threads.
    """
    env = dict(env or {}) | ({"BENCH_CPUS": ",".join(str(c) for c in range(threads))} if pin else {})
    return run_process([sys.executable, "-m", "benchmarks.jobs", name, *map(str, args), str(threads)], env)


def best(runs: list[Measure]) -> Measure:
    """The fastest successful run (peak RSS: the largest of the runs), or the first failure."""
    ok = [r for r in runs if r.error is None]
    if not ok:
        return runs[0]
    fastest = min(ok, key=lambda r: r.seconds)
    return Measure(fastest.seconds, max(r.peak_mib for r in ok), fastest.info)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def gib(path: Path) -> float:
    return path.stat().st_size / 2**30
