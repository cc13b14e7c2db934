"""The documentation: it builds with warnings as errors, and its YAML examples are what their tags say.

YAML code blocks in README.md and docs/ carry a title (docs/contributing.md, "Writing these docs"):
``pipeline`` (a whole pipeline, validated with ``geomask validate`` as if it were a file of
pipelines/, so ``../data/...`` paths resolve), ``profile`` (a whole run profile, validated with
``--profile``), ``pipeline fragment`` (not validated, and must not be a valid pipeline), or the path of
a repository file that the block includes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geomask.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```ya?ml(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
TITLE = re.compile(r'title="([^"]*)"')
TAGS = ("pipeline", "pipeline fragment", "profile")

runner = CliRunner()


@dataclass(frozen=True)
class Block:
    """A YAML code block of a documentation file."""

    source: Path
    line: int
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"


def yaml_blocks() -> list[Block]:
    """Every YAML code block of README.md and docs/**/*.md, dedented."""
    blocks = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            title = TITLE.search(match.group("info"))
            blocks.append(
                Block(
                    source=path,
                    line=text.count("\n", 0, match.start()) + 1,
                    title=title.group(1) if title else None,
                    text=textwrap.dedent(match.group("body")),
                )
            )
    return blocks


BLOCKS = yaml_blocks()


def _write(blocks: list[Block], folder: Path) -> dict[Path, Block]:
    """Each block as a file of ``folder``, named after its tag, source file and line."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, block in enumerate(blocks):
        tag = (block.title or "untagged").replace(" ", "-")
        path = folder / f"{i:02d}-{tag}-{block.source.stem}-{block.line}.yaml"
        path.write_text(block.text, encoding="utf-8")
        files[path] = block
    return files


def _project(tmp_path: Path) -> Path:
    """A folder laid out like the repository: pipelines/ beside data/ (a link to the real one)."""
    (tmp_path / "data").symlink_to(ROOT / "data", target_is_directory=True)
    return tmp_path / "pipelines"


@pytest.mark.slow
def test_docs_build_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` (as `make docs`): broken links, missing snippets or API objects fail.

    Not --quiet: it raises the log level above warnings, and strict mode then counts none.
    """
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]'")
    config, site = str(ROOT / "mkdocs.yml"), str(tmp_path / "site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", site],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    schema_page = (tmp_path / "site" / "reference" / "pipeline" / "index.html").read_text()
    assert "require_overlap" in schema_page, "the pipeline reference was not generated"


def test_every_yaml_block_is_tagged() -> None:
    """A YAML block says what it is; one titled with a path shows that repository file."""
    assert BLOCKS, "no YAML blocks found"
    untagged = [
        f"{b.where}: title={b.title!r}"
        for b in BLOCKS
        if b.title not in TAGS and not (b.title and (ROOT / b.title).is_file())
    ]
    assert not untagged, (
        'YAML blocks need title="pipeline", "pipeline fragment", "profile" or a repository file\'s path '
        f"(docs/contributing.md): {untagged}"
    )


def test_pipeline_blocks_validate(tmp_path: Path) -> None:
    """Every block tagged `pipeline` passes `geomask validate`; no `pipeline fragment` does."""
    tagged = [b for b in BLOCKS if b.title in ("pipeline", "pipeline fragment")]
    files = _write(tagged, _project(tmp_path))
    result = runner.invoke(app, ["validate", *map(str, files)])
    ok = {Path(line.split(": ok", 1)[0]) for line in result.stdout.splitlines() if ": ok" in line}
    failing = [
        f"{block.where}:\n{_problems(result.stdout, path)}"
        for path, block in files.items()
        if block.title == "pipeline" and path not in ok
    ]
    assert not failing, "pipeline blocks that do not validate:\n" + "\n".join(failing)
    whole_fragments = [
        block.where for path, block in files.items() if block.title != "pipeline" and path in ok
    ]
    assert not whole_fragments, (
        f'fragments that are whole pipelines, tag them title="pipeline": {whole_fragments}'
    )

    assert any(b.title == "pipeline" for b in tagged), "no YAML block is tagged as a whole pipeline"


def test_profile_blocks_validate(tmp_path: Path) -> None:
    """Every block tagged `profile` passes `geomask validate --profile`."""
    profiles = _write([b for b in BLOCKS if b.title == "profile"], tmp_path)
    assert profiles, "no YAML block is tagged as a profile"
    for path, block in profiles.items():
        result = runner.invoke(
            app, ["validate", str(ROOT / "pipelines" / "roi_denoise.yaml"), "--profile", str(path)]
        )
        assert result.exit_code == 0, f"{block.where}:\n{result.output}"


def _problems(output: str, path: Path) -> str:
    return "\n".join(line for line in output.splitlines() if line.startswith(str(path)))


def test_readme_links_exist() -> None:
    """README.md's relative links (into docs/) name files that exist; mkdocs checks only docs/."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert targets, "README.md links nowhere"
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
