"""``rio geomask``: geomask's commands as a rasterio CLI plugin (entry point ``rasterio.rio_plugins``).

``rio geomask run PIPELINE.yaml [options]`` is ``geomask run``: the arguments are handed to the same
typer command (typer carries its own copy of click, so its commands cannot be nested in rasterio's
click group directly), so options, output and exit codes are identical.
"""

from __future__ import annotations

import click

__all__ = ["geomask"]

_PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.group(name="geomask", help="Apply kernels only inside regions of interest (geomask).")
def geomask() -> None:
    """The ``rio geomask`` group."""


@geomask.command(name="run", context_settings=_PASS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(args: tuple[str, ...]) -> None:
    """Run PIPELINE.yaml, as `geomask run` (see `rio geomask run --help`)."""
    from geomask.cli import app

    app(["run", *args], prog_name="rio geomask", standalone_mode=True)
