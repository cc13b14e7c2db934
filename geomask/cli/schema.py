"""``geomask schema``: print the JSON Schema of pipeline or profile files."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from geomask.cli.options import DebugOption, handle_errors

__all__ = ["schema"]


class SchemaKind(str, Enum):
    """Which file format to describe."""

    pipeline = "pipeline"
    profile = "profile"


def schema(
    kind: Annotated[
        SchemaKind, typer.Argument(help="pipeline (pipelines/*.yaml) or profile (configs/*.yaml).")
    ] = SchemaKind.pipeline,
    debug: DebugOption = False,
) -> None:
    """Print the JSON Schema of pipeline (default) or profile files.

    Point your editor's YAML language server at it for completion and checking, e.g. a first line
    `# yaml-language-server: $schema=geomask.schema.json` after `geomask schema > geomask.schema.json`.
    """
    from geomask.config import Pipeline, Profile  # pydantic: loaded when the command runs

    with handle_errors(debug, writes=False):
        model = Pipeline if kind is SchemaKind.pipeline else Profile
        document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
        typer.echo(json.dumps(document, indent=2))
