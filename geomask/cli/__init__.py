"""The ``geomask`` command line: a thin layer over :mod:`geomask.pipeline` and :mod:`geomask.config`.

One module per command (:mod:`~geomask.cli.run`, :mod:`~geomask.cli.validate`,
:mod:`~geomask.cli.kernels`, :mod:`~geomask.cli.schema`); shared options and error handling in
:mod:`~geomask.cli.options`; the progress observer in :mod:`~geomask.cli.progress`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from geomask import __version__
from geomask.cli.kernels import kernels
from geomask.cli.mask import mask
from geomask.cli.run import run
from geomask.cli.schema import schema
from geomask.cli.validate import validate

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


def main() -> None:
    """Entry point of the ``geomask`` console script."""
    app()
