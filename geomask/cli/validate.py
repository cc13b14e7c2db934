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
                if not problems:
                    problems = _output_problems(model, profile)
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


def _output_problems(model: Pipeline, profile: Path | None) -> list[Problem]:
    """An output (or output STAC item) that would replace an input, a mask file, the pipeline or
    profile, or another output: the run refuses it (:func:`geomask.guard.check_run_outputs`)."""
    from geomask.errors import ConfigError, Problem
    from geomask.guard import check_run_outputs
    from geomask.lock import output_name_problem
    from geomask.urls import is_url

    source = model.source
    try:
        scenes = model.scenes()
        check_run_outputs(model, scenes, profile=profile)
        for _, output in scenes:  # the run writes OUTPUT.geomask.lock and OUTPUT.geomask-PID-X.partial
            problem = None if is_url(output) else output_name_problem(output)
            if problem is not None:
                raise ConfigError(problem)
    except ConfigError as e:
        if source is None:  # load_pipeline always records it
            raise
        message = str(e).removeprefix("output.path: ")
        key = ("output", "path")
        if message.startswith("output.stac: "):
            message, key = message.removeprefix("output.stac: "), ("output", "stac")
        where = source.value_position(key) or source.value_position(("output", "path"))
        return [Problem(source.file, where, ".".join(key), message)]
    return []
