"""``geomask qgis install|uninstall``: put the QGIS Processing provider into a QGIS profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geomask.cli.options import DebugOption, handle_errors

__all__ = ["qgis_app"]

qgis_app = typer.Typer(
    name="qgis",
    help="Install the QGIS plugin that adds geomask to the Processing toolbox, the model builder and "
    "qgis_process (algorithms geomask:filterinpolygons, geomask:filterinclasses, geomask:runpipeline).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ProfileOption = Annotated[
    str, typer.Option("--profile", metavar="NAME", help="QGIS user profile.", show_default=True)
]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--qgis-home",
        metavar="PATH",
        help="The folder holding QGIS's profiles/ [default: $QGIS_CUSTOM_CONFIG_PATH, else "
        "~/.local/share/QGIS/QGIS3 on Linux, ~/Library/Application Support/QGIS/QGIS3 on macOS, "
        "%APPDATA%\\QGIS\\QGIS3 on Windows].",
        show_default=False,
    ),
]


@qgis_app.command("install")
def install(
    profile: ProfileOption = "default",
    qgis_home: HomeOption = None,
    link: Annotated[
        bool,
        typer.Option("--link", help="Link the plugin to this package instead of copying it (development)."),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Install (or update) the geomask provider plugin in a QGIS profile and enable it.

    Records this geomask (the Python running now, and its PYTHONPATH if set) as the command the
    algorithms run, and the kernels it has. Run it again after upgrading geomask; restart QGIS.
    """
    from geomask import qgis_install

    with handle_errors(debug):
        target = qgis_install.install(
            qgis_install.QgisProfile(qgis_install.qgis_home(qgis_home), profile), link=link
        )
        command, _env = qgis_install.geomask_command()
        typer.echo(f"installed {target} (runs {' '.join(command)}); restart QGIS to load it")


@qgis_app.command("uninstall")
def uninstall(
    profile: ProfileOption = "default", qgis_home: HomeOption = None, debug: DebugOption = False
) -> None:
    """Remove the geomask provider plugin from a QGIS profile."""
    from geomask import qgis_install

    with handle_errors(debug):
        removed = qgis_install.uninstall(qgis_install.QgisProfile(qgis_install.qgis_home(qgis_home), profile))
        typer.echo(f"removed {removed}" if removed else "the geomask plugin was not installed there")
