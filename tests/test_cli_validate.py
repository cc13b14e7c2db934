"""Tests of `geomask validate` (and `geomask schema`, `geomask kernels`, `--help`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures_cli import PIPELINES, make_project, write_yaml
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app

runner = CliRunner()


def test_valid_pipeline(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok (1 step)\n"


def test_every_problem_with_line_numbers(tmp_path: Path) -> None:
    """A misspelled key, a wrong type and a missing required key: three lines, exit 2."""
    path = write_yaml(
        tmp_path / "p.yaml",
        "input: a.tif\nkernel:\n  name: box\n  size: three\nbondary: reflect\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{path}:1:1: output: missing required key 'output'",
        f"{path}:4:9: kernel.size: expected a whole number, got 'three'",
        f"{path}:5:1: bondary: unknown key 'bondary'. Did you mean 'boundary'?",
    ]
    assert "Traceback" not in result.output


def test_missing_files_are_problems(tmp_path: Path) -> None:
    path = make_project(tmp_path, mask={"vector": "nowhere.gpkg"})
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == f"{path}:3:11: mask.vector: no such vector file: {tmp_path / 'nowhere.gpkg'}\n"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", "input: [a.tif\nkernel: {name: box}\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout.startswith(f"{path}:2:") and "YAML syntax error" in result.stdout


def test_python_tag_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", "input: !!python/object/apply:os.system ['touch HACKED']\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:1:8: input: tag !!python/object/apply:os.system is not allowed" in result.stdout
    assert not Path("HACKED").exists()


def test_missing_file_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file: check the path\n"


def test_several_files_and_profile(tmp_path: Path) -> None:
    good = make_project(tmp_path)
    bad = write_yaml(tmp_path / "bad.yaml", "input: a.tif\n")
    profile = write_yaml(tmp_path / "local.yaml", "scheduler: thread\n")
    result = runner.invoke(app, ["validate", str(good), str(bad), "--profile", str(profile)])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"{good}: ok (1 step)"
    assert any(line.startswith(f"{bad}:1:1:") for line in lines)
    assert any(
        "scheduler: expected threads, processes, synchronous or a scheduler address" in x for x in lines
    )


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_pipelines_validate(path: Path) -> None:
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Pipeline" and "kernel" in schema["properties"]
    result = runner.invoke(app, ["schema", "profile"])
    assert json.loads(result.stdout)["title"] == "Profile"


def test_kernels_lists_every_kernel() -> None:
    result = runner.invoke(app, ["kernels"])
    assert result.exit_code == 0
    for name in kernels.names():
        assert f"\n{name}: " in "\n" + result.stdout
    assert "sigma: standard deviation in pixels" in result.stdout
    assert "gaussian(sigma=1.0, radius=3) 7x7" in result.stdout
    assert "custom:" in result.stdout


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["kernels"], ["schema"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: geomask" in result.stdout


def test_run_help_documents_every_option() -> None:
    text = runner.invoke(app, ["run", "--help"]).stdout
    for option in (
        "--overwrite",
        "--profile",
        "--window-size",
        "--scheduler",
        "--workers",
        "--continue-on-error",
        "--report",
        "--quiet",
        "--debug",
    ):
        assert option in text


def test_usage_error_exit_2() -> None:
    result = runner.invoke(app, ["run", "x.yaml", "--scheduler", "fast"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
