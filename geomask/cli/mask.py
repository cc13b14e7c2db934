"""``geomask mask``: write the mask a pipeline applies its kernels inside, as a GeoTIFF to check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geomask.cli.options import DebugOption, PipelineArgument, handle_errors
from geomask.errors import ConfigError
from geomask.templates import check_template, expand_template

__all__ = ["mask"]


def mask(
    pipeline: PipelineArgument,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="MASK.tif",
            help="The mask GeoTIFF to write. With several scenes, a template using {stem}, {name} or "
            "{parent} (e.g. masks/{stem}.mask.tif).",
            show_default=False,
        ),
    ],
    step: Annotated[
        int | None,
        typer.Option(
            "--step",
            min=1,
            metavar="N",
            help="Write step N's mask (1-based) instead of the union of every step's mask.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an existing file at the mask path (never an input, mask file, the pipeline or "
            "one of its outputs).",
        ),
    ] = False,
    window_size: Annotated[
        int,
        typer.Option("--window-size", min=16, metavar="PIXELS", help="Side of the windows rendered at once."),
    ] = 1024,
    debug: DebugOption = False,
) -> None:
    """Write the mask of PIPELINE.yaml on each of its scenes: a uint8 GeoTIFF, 1 inside, 0 outside.

    The mask is the union of every step's mask (a step without mask: the whole scene; a kernels_by
    step: the union of its classes), or step N's with --step N. It has the scene's CRS, transform and
    size, so it overlays the scene in QGIS. Nodata pixels follow the pipeline's nodata rule: sources
    that read pixels (expression, kmeans, raster classes) never select them. Prints one line per scene
    with the pixels selected. Exit code 0 when written, 2 for an invalid pipeline or argument.
    """
    from geomask.config import load_pipeline  # here, not at import: `geomask --help` stays fast
    from geomask.guard import RunFiles, check_output, is_geomask_tiff, run_files

    with handle_errors(debug):
        model = load_pipeline(pipeline)
        from geomask.config.build import build_mask_source  # imports the engine: when the command runs

        source = build_mask_source(model, step)
        pairs = model.scenes()
        template = str(output)
        try:
            used = check_template(template)
        except ConfigError as e:
            raise ConfigError(f"-o {output}: {e}") from e
        if len(pairs) > 1 and not used:
            raise ConfigError(
                f"-o {output}: the pipeline has {len(pairs)} scenes; use {{stem}}, {{name}} or {{parent}} "
                "in the path so each gets its own mask"
            )
        from geomask.config.inputs import band_scenes, is_product_input
        from geomask.masks.assets import for_band
        from geomask.masks.write import write_mask  # here, not at import: `--help` stays fast

        # a product: one mask per band file, on its grid, with the product's names resolved
        bands = band_scenes(model) if is_product_input(model.input) else [None] * len(pairs)

        files = run_files(model, pairs)  # the pipeline's inputs, mask files and outputs
        masks = RunFiles()
        targets = []
        for (scene, _), band in zip(pairs, bands, strict=True):
            fields = None if band is None else {"asset": band.name, "id": band.product.id}
            try:
                target = Path(expand_template(template, scene, fields))
            except ConfigError as e:
                raise ConfigError(f"-o {output}: {e}") from e
            check_output(target, files, flag="-o", overwrite=overwrite, ours=is_geomask_tiff)
            other = masks.role(target)
            if other is not None:
                raise ConfigError(
                    f"-o {target}: is {other}; use {{stem}} or {{name}} so each scene gets its own"
                )
            masks.add(target, f"the mask of {scene} too")
            targets.append((scene, target, band))
        for scene, target, band in targets:
            here = source if band is None else for_band([source], band.product, model.nodata)[0]
            selected = write_mask(
                scene, here, target, nodata=model.nodata, window_size=window_size, overwrite=overwrite
            )
            typer.echo(f"mask    {scene} -> {target}: {selected:,} pixels selected")
