"""MkDocs hook: fill the reference pages from the installed geomask when the docs are built.

A page holds a marker comment on a line of its own; the hook replaces it with text generated from the
command line, so the reference cannot drift from the code:

* ``<!-- geomask-schema: pipeline -->`` (or ``profile``): the JSON Schema printed by
  ``geomask schema KIND``, rendered as markdown by jsonschema2md.
* ``<!-- geomask-help: COMMAND -->``: the output of ``geomask COMMAND --help`` as a console block.

The command line is invoked in-process through typer's test runner (the same ``geomask.cli.app`` the
``geomask`` script runs), once per marker and build. A marker whose command fails stops the build.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

MARKER = re.compile(r"^<!-- geomask-(schema|help): ([a-z-]+) -->$", re.MULTILINE)


@cache
def _cli(*args: str) -> str:
    """The stdout of ``geomask ARGS``; raises RuntimeError if it exits non-zero."""
    from typer.testing import CliRunner

    from geomask.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})
    if result.exit_code != 0:
        raise RuntimeError(f"geomask {' '.join(args)} exited {result.exit_code}: {result.output.strip()}")
    return result.stdout


def _schema_markdown(kind: str) -> str:
    """``geomask schema KIND`` as markdown, its headings one level below the page title."""
    import jsonschema2md

    schema = json.loads(_cli("schema", kind))
    return "".join(jsonschema2md.Parser(header_level=1).parse_schema(schema))


def _help_markdown(command: str) -> str:
    """``geomask COMMAND --help`` as a console code block."""
    args = ("--help",) if command == "geomask" else (command, "--help")
    return f"```text\n{_cli(*args).rstrip()}\n```\n"


def _replace(match: re.Match[str]) -> str:
    what, name = match.group(1), match.group(2)
    return _schema_markdown(name) if what == "schema" else _help_markdown(name)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace every marker of the page with its generated text."""
    return MARKER.sub(_replace, markdown)
