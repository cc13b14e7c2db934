"""``geomask validate``: check pipeline (and profile) files without running them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geomask.cli.options import EXIT_USAGE, DebugOption, handle_errors

if TYPE_CHECKING:
    from geomask.config import Pipeline
    from geomask.errors import Problem

__all__ = ["validate"]


def validate(
    pipelines: Annotated[
        list[Path],
        typer.Argument(
            metavar="PIPELINE.yaml...",
            help="Pipeline files to check; relative paths inside resolve against each file's folder.",
            show_default=False,
        ),
    ],
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile", metavar="PROFILE.yaml", help="Also check this run profile.", show_default=False
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Check pipeline files: schema, types, kernel parameters, that inputs and mask files exist, and
    against each existing scene: band references, kernel size, nodata range, output collisions.

    Prints every problem as FILE:LINE:COL: key.path: message (with a did-you-mean for misspelled
    keys), or `FILE: ok` for a valid file. Exit code 0 when every file is valid, 2 otherwise.
    Nothing is read beyond the YAML files, the existence of the files they name and the scenes'
    headers (no pixels).
    """
    from geomask.config import YamlError, file_problems, load_pipeline, load_profile
    from geomask.config.scenes import scene_problems

    with handle_errors(debug, writes=False):
        failed = False
        for path in pipelines:
            try:
                model = load_pipeline(path)  # read once: the path may be a stream
            except YamlError as e:
                problems = list(e.problems)
            else:
                problems = file_problems(model) + scene_problems(model)
                problems = problems or _output_problems(model)
            for problem in problems:
                typer.echo(str(problem))
            if problems:
                failed = True
                continue
            steps = len(model.step_configs())
            typer.echo(f"{path}: ok ({steps} step{'s' if steps > 1 else ''})")
        if profile is not None:
            try:
                load_profile(profile)
            except YamlError as e:
                failed = True
                for problem in e.problems:
                    typer.echo(str(problem))
            else:
                typer.echo(f"{profile}: ok")
        if failed:
            raise typer.Exit(EXIT_USAGE)


def _output_problems(model: Pipeline) -> list[Problem]:
    """An output that would replace an input, a band file, an asset, a mask file, the STAC document or
    the pipeline (:func:`geomask.guard.check_run_outputs`, which a run applies before any scene)."""
    from geomask.errors import ConfigError, Problem
    from geomask.guard import check_run_outputs

    source = model.source
    try:
        check_run_outputs(model, model.scenes())
    except ConfigError as e:
        if source is None:  # not reachable: load_pipeline records it
            raise
        where = source.value_position(("output", "path"))
        return [Problem(source.file, where, "output.path", str(e).removeprefix("output.path: "))]
    return []
