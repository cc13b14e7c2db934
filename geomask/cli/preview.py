"""``geomask preview``: a before | after | changes | mask quicklook PNG of a pipeline's first scene."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geomask.cli.options import DebugOption, PipelineArgument, handle_errors

__all__ = ["preview"]


def preview(
    pipeline: PipelineArgument,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="QUICKLOOK.png", help="The PNG to write.", show_default=False),
    ],
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an existing file at -o that geomask did not write (a geomask quicklook is "
            "replaced without it; an input, mask file, the pipeline or its outputs never are).",
        ),
    ] = False,
    size: Annotated[
        int,
        typer.Option("--size", min=16, metavar="PIXELS", help="Longer side of each panel, at most."),
    ] = 512,
    debug: DebugOption = False,
) -> None:
    """Render before | after | changes | mask of the pipeline's first scene, with mask outlines.

    Both images are reduced the same way from full-resolution pixels (block means, one contrast
    stretch), so unchanged areas look identical; "changes" marks in magenta every preview pixel
    that covers a changed pixel. "after" is the pipeline's current output when there is one, else
    computed at full resolution (labelled "after (computed)": it costs a run of the first scene).
    """
    from geomask.config import load_pipeline  # here, not at import: `geomask --help` stays fast
    from geomask.guard import check_output, is_geomask_png, run_files
    from geomask.preview import render_preview

    with handle_errors(debug):
        model = load_pipeline(pipeline)
        check_output(
            output, run_files(model, model.scenes()), flag="-o", overwrite=overwrite, ours=is_geomask_png
        )
        path = render_preview(model, output, size=size)
        typer.echo(f"wrote   {path}")
