"""The ``geomask`` command line: a thin layer over :mod:`geomask.pipeline` and :mod:`geomask.config`.

One module per command (:mod:`~geomask.cli.run`, :mod:`~geomask.cli.validate`,
:mod:`~geomask.cli.kernels`, :mod:`~geomask.cli.schema`); shared options and error handling in
:mod:`~geomask.cli.options`; the progress observer in :mod:`~geomask.cli.progress`.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import Annotated

try:  # loading the commands takes a second (pyproj, typer ...): Ctrl-C then is no traceback either
    import typer

    from geomask import __version__
    from geomask.cli.kernels import kernels
    from geomask.cli.mask import mask
    from geomask.cli.qgis import qgis_app
    from geomask.cli.run import run
    from geomask.cli.schema import schema
    from geomask.cli.validate import validate
except KeyboardInterrupt:
    sys.stderr.write("error: interrupted\n")
    raise SystemExit(130) from None

__all__ = ["app", "main"]

app = typer.Typer(
    name="geomask",
    help="Apply image kernels (gaussian, sharpen, median, custom ...) only inside regions of interest "
    "of GeoTIFF scenes, window by window and in parallel, driven by YAML pipelines.\n\n"
    "Exit codes: 0 done, 1 the run failed, 2 invalid pipeline, input or usage, 130/143 interrupted "
    "(SIGINT/SIGTERM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("run")(run)
app.command("preview")(__import__("geomask.cli.preview", fromlist=["preview"]).preview)
app.command("validate")(validate)
app.command("kernels")(kernels)
app.command("schema")(schema)
app.command("mask")(mask)
app.add_typer(qgis_app, name="qgis")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geomask {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Apply kernels only inside regions of interest of GeoTIFF scenes."""


def run_command(args: list[str] | None = None) -> int:
    """Run the command line with ``args`` (default: ``sys.argv[1:]``) as the ``geomask`` command
    does, and return its exit code (the process goes on).

    The cyclic garbage collector's youngest generation is collected every 20,000 allocations, not
    every 700: importing the libraries a run needs (pydantic models, rasterio, pandas) allocates
    hundreds of thousands of objects that live to the end, and collecting them over and over cost
    ~0.07-0.1 s of CPU of the demo's 0.8 s. Cycles are still collected.

    numpy's BLAS gets one thread (:func:`_one_blas_thread`).
    """
    gc.set_threshold(20_000, 10, 10)
    _one_blas_thread()
    try:
        app(args)
        return 0
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        return e.code if isinstance(e.code, int) else int(e.code is not None)


def _one_blas_thread() -> None:
    """Ask OpenBLAS (numpy's BLAS) for one thread, unless the user chose: geomask calls no BLAS.

    On import, numpy's OpenBLAS starts a thread per core that spins ~0.1 s of CPU waiting for work
    (measured: ``import numpy`` 0.18 s of CPU, 0.07 s with one thread), taken from a run that keeps
    every core busy, in this process and in every worker process it starts (they inherit the
    variable). Effective only before numpy is imported: the command line imports it lazily.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    """Entry point of the ``geomask`` console script: :func:`run_command`, then exit.

    Once the command has returned (every output closed and renamed, every pool and cluster shut
    down), the process ends with ``os._exit`` after the ``atexit`` handlers and a flush: the
    interpreter's module teardown (finalisers of pandas, numba/LLVM, GDAL ...) costs 0.3-0.5 s
    and does nothing a finished run needs. Measured on the 8192^2 benchmark: 4.16 s -> 3.66 s.
    """
    code = run_command()
    getattr(atexit, "_run_exitfuncs", lambda: None)()  # no public API: what normal exit does first
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
