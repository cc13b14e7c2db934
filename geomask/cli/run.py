"""``geomask run``: run a pipeline on its scene(s) and write the outputs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from geomask import __version__
from geomask.capacity import MAX_WORKERS
from geomask.cli.options import (
    EXIT_FAILED,
    DebugOption,
    PipelineArgument,
    QuietOption,
    handle_errors,
    interruptible,
)
from geomask.errors import OutputError
from geomask.spec import RunOptions, SceneReport, is_distributed

__all__ = ["run"]

PROFILE_ENV = "GEOMASK_PROFILE"


def run(
    pipeline: PipelineArgument,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Redo every scene and replace its output. Without it a rerun skips scenes whose output "
            "is current, redoes outputs of an older run, and stops (exit 2) at a file geomask did not write.",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="PROFILE.yaml",
            envvar=PROFILE_ENV,
            help="Run profile (scheduler, workers, window size, GDAL and creation options; see "
            "`geomask schema profile`). Default: $GEOMASK_PROFILE, else built-in defaults. "
            "The options below override it.",
            show_default=False,
        ),
    ] = None,
    window_size: Annotated[
        int | None,
        typer.Option(
            "--window-size",
            min=16,
            metavar="PIXELS",
            help="Window side in pixels, rounded up to a multiple of the input's block size "
            "[default: 1024]. Memory grows with its square.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="threads|processes|synchronous|local-cluster|tcp://HOST:PORT",
            callback=_check_scheduler,
            help="How windows run in parallel: threads (default), processes, synchronous (one at a "
            "time, for debugging), local-cluster (dask.distributed worker processes on this machine; "
            "--workers of them) or the address of a running dask.distributed scheduler, "
            "tcp://HOST:PORT (see README: Run on a cluster).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=MAX_WORKERS,
            metavar="N",
            help=f"Parallel workers, 1..{MAX_WORKERS} [default: all cores]; capped at what the machine "
            "holds (threads: 4 per core; processes: one per core and 256 MiB each), with a warning.",
            show_default=False,
        ),
    ] = None,
    continue_on_error: Annotated[
        bool,
        typer.Option(
            "--continue-on-error",
            help="With several scenes: record a scene that fails and go on with the next (exit 1 at end).",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="REPORT.json",
            help="Write a JSON report: per scene the status, output path, windows computed and skipped, "
            "pixels selected and changed, seconds and error. Never an input, mask, pipeline, profile or "
            "output of the run; a file that is not a geomask report needs --overwrite.",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        str,
        typer.Option(
            "--progress",
            metavar="auto|lines",
            callback=_check_progress,
            help="auto: a progress bar when stdout is a terminal (--quiet: none). lines: instead, "
            "machine-readable lines on stderr for programs that run geomask, "
            "'progress: 37.5% scene 1/2 windows 3/4', one per whole percent and per finished scene.",
        ),
    ] = "auto",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Run PIPELINE.yaml: apply its kernels inside its masks and write the output GeoTIFF/COG.

    Prints one line per scene (output path, pixels selected and changed, or skipped when its output
    is current). Exit code 0 when every scene is done or skipped, 1 when a run failed, 2 when the
    pipeline, an input or an argument is invalid or a file geomask did not write is at an output path
    without --overwrite. Nothing is left at the output path of a failed scene.
    """
    # Imported here, not at the top: `geomask --help` loads no pydantic models, rasterio or rich.
    from geomask.cli.progress import CliObserver
    from geomask.config import Profile, load_pipeline, load_profile
    from geomask.guard import check_output, check_run_outputs, is_geomask_report, run_files
    from geomask.output.staging import remove_stale_partials

    with handle_errors(debug):
        model = load_pipeline(pipeline)
        settings = load_profile(profile) if profile is not None else Profile()
        from geomask.config.build import build_run_options  # imports the engine: when the command runs

        options = build_run_options(
            settings,
            window_size=window_size,
            scheduler=scheduler,
            workers=workers,
        )
        scenes = model.scenes()
        check_run_outputs(model, scenes, profile=profile)
        if report is not None:
            files = run_files(model, scenes, profile=profile)
            check_output(report, files, flag="--report", overwrite=overwrite, ours=is_geomask_report)
            remove_stale_partials(report)  # a report temporary of a run killed with SIGKILL
        with contextlib.ExitStack() as stack:
            client = None
            if is_distributed(options.scheduler):
                client = stack.enter_context(_cluster(options, debug=debug))
            observer = stack.enter_context(
                CliObserver(len(scenes), progress=not quiet, lines=progress == "lines")
            )
            stack.enter_context(interruptible(lambda: observer.reports, len(scenes)))
            from geomask.pipeline import run_pipeline  # here, not at import: `--help` stays fast

            reports = run_pipeline(
                model,
                overwrite=overwrite,
                options=options,
                observer=observer,
                creation_options=settings.creation_options,
                continue_on_error=continue_on_error,
                client=client,
            )
            if report is not None:  # inside interruptible: SIGTERM removes its temporary too
                _write_report(report, pipeline, reports)
        if len(reports) > 1 and not quiet:
            _summary(reports)
        if any(r.status == "failed" for r in reports):
            raise typer.Exit(EXIT_FAILED)


def _check_progress(value: str) -> str:
    if value not in ("auto", "lines"):
        raise typer.BadParameter(f"{value!r} is not one of auto, lines")
    return value


def _check_scheduler(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        from geomask.config.profile import parse_scheduler

        return parse_scheduler(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


@contextlib.contextmanager
def _cluster(options: RunOptions, *, debug: bool) -> Iterator[Any]:
    """Connect to the cluster for the run; print where its dashboard is (stderr)."""
    from geomask.executors.distributed import connect, dashboard_link

    if not debug:
        # distributed logs every reconnection attempt and lost worker with a traceback; the run
        # reports what matters as one line (lost scheduler: RunError), so keep its logs quiet.
        names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        for name in ["distributed", *names]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    with connect(options) as client:
        link = dashboard_link(client)
        where = f"dask dashboard: {link}" if link else "no dask dashboard (bokeh is not installed there)"
        typer.echo(f"cluster {client.scheduler.address}: {where}", err=True)
        yield client


def _summary(reports: list[SceneReport]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="geomask run")
    for column in ("status", "input", "output", "selected", "changed", "seconds"):
        table.add_column(column, justify="right" if column in ("selected", "changed", "seconds") else "left")
    for r in reports:
        table.add_row(
            r.status, r.input, r.output, f"{r.pixels_selected:,}", f"{r.pixels_changed:,}", f"{r.seconds:.1f}"
        )
    Console().print(table)


def _write_report(path: Path, pipeline: Path, reports: list[SceneReport]) -> None:
    """Write the JSON report atomically: a temporary file beside it, then renamed.

    The temporary is named like the outputs' (``REPORT.json.geomask-PID-RANDOM.partial``), so an
    interrupt removes it and the next run removes it after a SIGKILL (:func:`remove_stale_partials`).
    """
    document = {
        "geomask_version": __version__,
        "pipeline": str(pipeline),
        "ok": all(r.status != "failed" for r in reports),
        "scenes": [dataclasses.asdict(r) for r in reports],
    }
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        from geomask.output.staging import partial_path

        tmp = partial_path(folder / path.name)
        try:
            with open(tmp, "x", encoding="utf-8") as f:
                json.dump(document, f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise OutputError(f"cannot write the report {path}: {e.strerror or e}") from e
