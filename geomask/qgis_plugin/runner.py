"""Run the geomask command line for an algorithm: the command, progress, cancel and errors.

The command is read from ``geomask.json`` beside this file, written by ``geomask qgis install``::

    {"command": ["/path/to/python", "-m", "geomask"], "env": {"PYTHONPATH": "..."},
     "version": "0.1.0", "kernels": {"gaussian": ["sigma", "radius"], ...}}

geomask runs as a subprocess with ``--progress lines``: its ``progress: 37.5% ...`` lines move
QGIS's progress bar, its ``error: ...`` lines become the algorithm's error, every other line is
shown in the log. Cancelling sends SIGINT (geomask stops, removes its partial output and exits
130); a run that does not stop within :data:`STOP_SECONDS` is killed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

CONFIG = Path(__file__).with_name("geomask.json")
STOP_SECONDS = 60.0
# Used when the plugin is not configured yet, so the toolbox still shows the parameters.
DEFAULT_KERNELS: dict[str, list[str]] = {
    "box": ["size"],
    "disk": ["radius"],
    "emboss": [],
    "gaussian": ["sigma", "radius"],
    "laplacian": [],
    "maximum": ["size"],
    "median": ["size"],
    "minimum": ["size"],
    "sharpen": ["amount"],
    "sobel_x": [],
    "sobel_y": [],
}
_PROGRESS = re.compile(r"^progress: ([0-9.]+)%")
# Variables of QGIS's own Python that must not reach geomask's interpreter.
_QGIS_PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")


def _config() -> dict[str, Any]:
    try:
        return json.loads(CONFIG.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def config_problem() -> str | None:
    """Why geomask cannot be run (one line), or None when the plugin is configured."""
    if not CONFIG.exists():
        return (
            f"the geomask provider is not configured ({CONFIG} is missing): run `geomask qgis install` "
            "in the Python environment where geomask is installed, then restart QGIS"
        )
    command = _config().get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        return f"{CONFIG} has no valid 'command': run `geomask qgis install` again"
    if not Path(command[0]).exists():
        return (
            f"the geomask command {command[0]} does not exist (moved or uninstalled?): run "
            "`geomask qgis install` again from the environment where geomask is installed"
        )
    return None


def version() -> str:
    """The geomask version recorded at install time ("" when unknown)."""
    return str(_config().get("version", ""))


def kernels() -> dict[str, list[str]]:
    """Kernel names and their parameters, as recorded from geomask at install time."""
    found = _config().get("kernels")
    return found if isinstance(found, dict) and found else DEFAULT_KERNELS


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _QGIS_PYTHON_VARIABLES}
    env.update({str(k): str(v) for k, v in (_config().get("env") or {}).items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen[str]) -> None:
    """Ask geomask to stop as Ctrl-C does (it removes its partial output), then kill if it hangs."""
    if process.poll() is not None:
        return
    if sys.platform == "win32":
        process.terminate()
    else:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_geomask(
    arguments: list[str], feedback: QgsProcessingFeedback | None, *, hide: str | None = None
) -> list[str]:
    """Run ``geomask ARGUMENTS``, reporting to ``feedback``; return its output lines.

    ``hide``: a file the user did not write (the temporary pipeline): errors about it lose their
    ``FILE:LINE:COL:`` prefix, so they read as being about the algorithm's parameters.

    Raises
    ------
    QgsProcessingException
        geomask is not configured, exited with an error (the message is geomask's one-line error),
        or the run was cancelled (geomask was stopped and left nothing at the output).
    """
    problem = config_problem()
    if problem:
        raise QgsProcessingException(problem)
    command = [*_config()["command"], *arguments]
    if feedback is not None:
        feedback.pushCommandInfo(" ".join(shlex.quote(c) for c in command))
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=_environment(),
        )
    except OSError as e:
        raise QgsProcessingException(f"cannot start geomask ({command[0]}): {e.strerror or e}") from e
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    output: list[str] = []
    errors: list[str] = []
    cancelled = False
    try:
        while True:
            if feedback is not None and feedback.isCanceled() and not cancelled:
                cancelled = True
                _stop(process)
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            _report(line, None if cancelled else feedback, output, errors)
            if cancelled and feedback is not None and not _PROGRESS.match(line):
                feedback.pushInfo(line)
    finally:
        _stop(process)
        reader.join(timeout=5)
    code = process.wait()
    if cancelled and code != 0:  # (code 0: geomask had finished before it was asked to stop)
        raise QgsProcessingException("cancelled: geomask was stopped and left nothing at the output")
    if code != 0:
        if hide:
            errors = [re.sub(rf"^{re.escape(hide)}(:\d+:\d+)?: ", "", e) for e in errors]
        message = "; ".join(errors) or (output[-1] if output else f"geomask exited with code {code}")
        raise QgsProcessingException(f"geomask: {message}")
    return output


def _report(line: str, feedback: QgsProcessingFeedback | None, output: list[str], errors: list[str]) -> None:
    match = _PROGRESS.match(line)
    if match:
        if feedback is not None:
            feedback.setProgress(float(match.group(1)))
        return
    output.append(line)
    if line.startswith("error: "):
        errors.append(line[len("error: ") :])  # raised as the algorithm's error at the end
    elif line.startswith(("warning: ", "failed ")):
        if feedback is not None:
            feedback.pushWarning(line)
    elif feedback is not None:
        feedback.pushInfo(line)
