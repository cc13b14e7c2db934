"""Tests of geomask.config: the guarded YAML reader, the pipeline/profile schema and its messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures_cli import CONFIGS, shipped_pipelines, write_yaml

from geomask.config import (
    Pipeline,
    Profile,
    StepConfig,
    YamlError,
    load_pipeline,
    load_profile,
    pipeline_problems,
)
from geomask.config.build import build_kernel, build_run_options
from geomask.config.yamlsafe import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES, loads_yaml
from geomask.errors import ConfigError, InputError
from geomask.messages import did_you_mean

MINIMAL = """\
input: scene.tif
kernel:
  name: gaussian
  sigma: 1
output:
  path: out.tif
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = write_yaml(tmp_path / "p.yaml", text)
    with pytest.raises(YamlError) as info:
        load_pipeline(path)
    return [str(p) for p in info.value.problems]


# ---------------------------------------------------------------- the YAML reader


def test_yaml_core_schema_scalars() -> None:
    data, _ = loads_yaml("a: [NO, on, y, 010, 1e3, 0x1F, 0o17, 2024-01-01, .inf, ~, true, 1.5, -3, '7']\n")
    assert data["a"] == [
        "NO",
        "on",
        "y",
        "010",
        1000.0,
        31,
        15,
        "2024-01-01",
        float("inf"),
        None,
        True,
        1.5,
        -3,
        "7",
    ]


def test_yaml_records_positions() -> None:
    _, source = loads_yaml("a: 1\nb:\n  c:\n    - x\n    - y\n")
    assert (source.keys[("b", "c")].line, source.keys[("b", "c")].column) == (3, 3)
    assert source.values[("b", "c", 1)].line == 5


def test_yaml_duplicate_keys_all_reported() -> None:
    with pytest.raises(YamlError) as info:
        loads_yaml("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n", file="f.yaml")
    assert [str(p) for p in info.value.problems] == [
        "f.yaml:4:3: b.c: duplicate key (first given at line 3): keep only one",
        "f.yaml:5:1: a: duplicate key (first given at line 1): keep only one",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['echo hacked']\n",
        "a: !!python/name:os.system\n",
        "a: !!binary aGVsbG8=\n",
        "a: !custom 3\n",
    ],
)
def test_yaml_refuses_tags(text: str) -> None:
    with pytest.raises(YamlError, match=r"<string>:1:4: a: tag .* is not allowed"):
        loads_yaml(text)


def test_yaml_refuses_alias_bomb() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    with pytest.raises(YamlError, match="alias"):
        loads_yaml("\n".join(lines) + "\n")


@pytest.mark.slow
def test_yaml_too_many_plain_values_is_not_called_an_alias_bomb() -> None:
    text = "a: [" + ",".join(["0"] * (MAX_NODES + 10)) + "]\n"  # under MAX_BYTES, no alias at all
    with pytest.raises(YamlError, match=f"more than {MAX_NODES} values: too large for a pipeline") as caught:
        loads_yaml(text)
    assert "alias" not in str(caught.value)


@pytest.mark.parametrize(
    "output",
    ["{path: out/{stem}.tif}", "{path: out/{stem}_x.tif, compress: lzw}", "{path: {stem}}"],
)
def test_unquoted_placeholder_in_a_flow_mapping_gets_a_quote_hint(tmp_path: Path, output: str) -> None:
    problems = _problems(tmp_path, f"input: scene.tif\nkernel: {{name: box}}\noutput: {output}\n")
    assert len(problems) == 1
    assert "{stem}" in problems[0] and 'quote the value, e.g. "out/{stem}.tif"' in problems[0], problems


def test_pipeline_path_too_long_is_said_as_such(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"file name too long: a name of 305 bytes, the limit is 255; shorten it"
    ):
        load_pipeline(tmp_path / ("p" * 300 + ".yaml"))


def test_yaml_refuses_many_aliases() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(YamlError, match="aliases"):
        loads_yaml(text)


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000, "a: &a [*a]\n"])
def test_yaml_refuses_deep_nesting(text: str) -> None:
    with pytest.raises(YamlError, match=f"nesting deeper than {MAX_DEPTH}"):
        loads_yaml(text)


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(YamlError, match=r"^f.yaml:3:\d+: YAML syntax error"):
        loads_yaml("a: 1\nb: [1, 2\nc: 3\n", file="f.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("1: a\n", "keys must be text"),
        ("x: &x {a: 1}\ny:\n  <<: *x\n", "merge keys"),
    ],
)
def test_yaml_other_refusals(text: str, message: str) -> None:
    with pytest.raises(YamlError, match=message):
        loads_yaml(text)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_pipeline(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_pipeline(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_pipeline(tmp_path / "bin.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_pipeline(write_yaml(tmp_path / "list.yaml", "- a\n- b\n"))


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("input: a.tif\nkernel: {name: box}\x00\n", "2:20", "a NUL byte"),
        ("\x00", "1:1", "a NUL byte"),
        ("input: a.tif\nkernel:\n  name: b\x01ox\n", "3:10", "the control character U+0001"),
    ],
)
def test_nul_bytes_and_control_characters_are_one_problem(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    # was "unexpected ReaderError ... (a bug)"
    path = tmp_path / "p.yaml"
    path.write_bytes(text.encode())
    with pytest.raises(YamlError) as info:
        load_pipeline(path)
    assert (
        str(info.value.problems[0])
        == f"{path}:{where}: {message}: a pipeline is text; remove it or save as UTF-8"
    )


def test_streams_are_read_with_the_file_size_limit(tmp_path: Path) -> None:
    # /dev/zero never ends and reports size 0: read at most MAX_BYTES + 1 bytes, then refuse.
    with pytest.raises(ConfigError, match=f"more than {MAX_BYTES} bytes is too large"):
        load_pipeline("/dev/zero")
    # a FIFO fed more than the limit by a writer that would go on forever
    import os
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        try:
            with open(fifo, "wb") as out:
                while not stop.is_set():
                    out.write(b"# comment\n" * 10_000)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        with pytest.raises(ConfigError, match="too large"):
            load_pipeline(fifo)
    finally:
        stop.set()
        writer.join(5)


# ---------------------------------------------------------------- the schema


def test_minimal_pipeline_resolves_paths_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write_yaml(
        tmp_path / "sub" / "p.yaml",
        MINIMAL.replace("scene.tif", "../data/scene.tif") + "mask: {vector: roi.geojson}\n",
    )
    pipeline = load_pipeline(path)
    assert pipeline.input == [str(tmp_path / "data" / "scene.tif")]
    assert pipeline.output.path == tmp_path / "sub" / "out.tif"
    assert pipeline.mask is not None and pipeline.mask.vector == tmp_path / "sub" / "roi.geojson"
    assert pipeline.nodata == "auto"
    assert pipeline.output.format == "GTiff" and pipeline.output.compress == "deflate"
    [step] = pipeline.step_configs()
    assert build_kernel(step.kernel).describe() == "gaussian(sigma=1.0, radius=3) 7x7"


def test_dot_dot_after_a_symlink_names_the_file_the_system_opens(tmp_path: Path) -> None:
    """``link/../scene.tif`` with ``link -> real/dir`` is real/scene.tif for GDAL and a shell; folded
    lexically it was the pipeline folder's scene.tif, another file, read silently."""
    (tmp_path / "real" / "dir").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "dir")
    text = (
        MINIMAL.replace("scene.tif", "link/../scene.tif")
        + "mask: {raster: link/../classes.tif, values: [1]}\n"
    )
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", text))
    assert pipeline.input == [str(tmp_path / "real" / "scene.tif")]
    assert pipeline.mask is not None and pipeline.mask.raster == tmp_path / "real" / "classes.tif"
    bands = write_yaml(
        tmp_path / "b.yaml", text.replace("input: link/../scene.tif", "input: {bands: {red: link/../b4.tif}}")
    )
    assert load_pipeline(bands).input.bands == {"red": str(tmp_path / "real" / "b4.tif")}


def test_absolute_paths_stay(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", MINIMAL.replace("scene.tif", "/abs/scene.tif"))
    assert load_pipeline(path).input == ["/abs/scene.tif"]


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    text = MINIMAL.replace("kernel:", "kernal:") + "  compres: lzw\n"
    problems = _problems(tmp_path, text)
    assert any(":2:1: kernal: unknown key 'kernal'. Did you mean 'kernel'?" in p for p in problems)
    assert any(":7:3: output.compres: unknown key 'compres'. Did you mean 'compress'?" in p for p in problems)


def test_unknown_key_without_close_match_lists_allowed(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL + "zzzzzz: 1\n")
    assert any("unknown key 'zzzzzz'. Allowed here: bands, boundary, cval" in p for p in problems)


def test_no_internal_names_and_no_suggestion_of_what_was_typed(tmp_path: Path) -> None:
    mask = "mask: {bbox: [0, 0, 1, 1], not: {bbox: [0, 0, 1, 1]}}\n"
    problems = _problems(tmp_path, MINIMAL + mask)
    assert len(problems) == 1
    assert "mask.not: key 'not' cannot stand beside the other keys here" in problems[0]
    assert "not_" not in problems[0] and "Did you mean" not in problems[0]
    problems = _problems(tmp_path, MINIMAL + "mask: {bbox: [0, 0, 1, 1], nott: {bbox: [0, 0, 1, 1]}}\n")
    assert "unknown key 'nott'. Did you mean 'not'?" in problems[0] and "not_" not in problems[0]


@pytest.mark.parametrize(
    ("typed", "choices", "hint"),
    [
        ("gaussian", ["gaussian", "box"], ""),
        ("gaussian ", ["gaussian", "box"], " Did you mean 'gaussian' (without the spaces)?"),
        ("Gaussian", ["gaussian", "box"], " Did you mean 'gaussian' (in lower case)?"),
        ("gausian", ["gaussian", "box"], " Did you mean 'gaussian'?"),
        ("zzz", ["gaussian", "box"], ""),
    ],
)
def test_did_you_mean_never_suggests_what_was_typed(typed: str, choices: list[str], hint: str) -> None:
    assert did_you_mean(typed, choices) == hint


def test_unknown_kernel_name_typed_with_spaces(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("gaussian", "'gaussian '"))
    assert len(problems) == 1
    assert "Did you mean 'gaussian' (without the spaces)?" in problems[0], problems


def test_unknown_kernel_parameter(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("sigma: 1", "sigmaa: 1"))
    assert problems == [
        f"{tmp_path / 'p.yaml'}:4:3: kernel.sigmaa: unknown key 'sigmaa'. Did you mean 'sigma'?"
    ]


def test_unknown_kernel_name(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("gaussian", "gausian"))
    assert len(problems) == 1
    assert ":3:3: kernel: unknown kernel 'gausian'. Did you mean 'gaussian'?" in problems[0]


def test_kernel_values_checked_by_the_registry(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "input: a.tif\nkernel: {name: box, size: 4}\noutput: {path: o.tif}\n")
    file = tmp_path / "p.yaml"
    assert problems == [
        f"{file}:2:9: kernel: kernel 'box': size must be a positive odd number (3, 5, 7, ...), got 4"
    ]
    problems = _problems(
        tmp_path, "input: a.tif\nkernel: {matrix: [[1, 2], [3, 4]]}\noutput: {path: o.tif}\n"
    )
    assert "both side lengths must be odd" in problems[0]


def test_custom_matrix_kernel(tmp_path: Path) -> None:
    text = "input: a.tif\nkernel:\n  matrix: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]\noutput: {path: o.tif}\n"
    kernel = build_kernel(load_pipeline(write_yaml(tmp_path / "p.yaml", text)).step_configs()[0].kernel)
    assert kernel.name == "custom" and kernel.shape == (3, 3) and kernel.weights[1, 1] == 5


def test_all_problems_at_once_with_lines(tmp_path: Path) -> None:
    """A misspelled key, a wrong type and a missing required key: all three, with their lines."""
    text = "input: a.tif\nkernel:\n  name: box\n  size: three\nbondary: reflect\n"
    problems = _problems(tmp_path, text)
    file = tmp_path / "p.yaml"
    assert problems == [
        f"{file}:1:1: output: missing required key 'output'",
        f"{file}:4:9: kernel.size: expected a whole number, got 'three'",
        f"{file}:5:1: bondary: unknown key 'bondary'. Did you mean 'boundary'?",
    ]


def test_error_message_is_the_first_problem_and_counts_the_rest(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", "input: a.tif\nkernel: {name: box, size: 2}\nzzz: 1\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:1:1: output: missing required key 'output'")
    assert message.endswith("(and 2 more problems)")


@pytest.mark.parametrize(
    ("line", "value", "expected"),
    [
        ("all_touched", "NO", "mask.all_touched: expected true or false, got 'NO'"),
        ("all_touched", "yes", "mask.all_touched: expected true or false, got 'yes'"),
        ("where", "false", "mask.where: expected text, got the boolean false (YAML reads unquoted"),
        ("layer", "true", "mask.layer: expected text, got the boolean true"),
        ("buffer", "'10'", "mask.buffer: expected a number, got '10' (remove the quotes)"),
    ],
)
def test_yaml_11_surprises_in_mask(tmp_path: Path, line: str, value: str, expected: str) -> None:
    text = MINIMAL + f"mask:\n  vector: roi.geojson\n  {line}: {value}\n"
    problems = _problems(tmp_path, text)
    assert len(problems) == 1 and expected in problems[0]


def test_string_no_stays_a_string(tmp_path: Path) -> None:
    """`NO` for a text field is the text 'NO' (Norway), not false."""
    text = MINIMAL + "mask:\n  vector: roi.geojson\n  where: NO\n  layer: off\n"
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", text))
    assert pipeline.mask is not None and pipeline.mask.where == "NO" and pipeline.mask.layer == "off"


def test_leading_zero_integer_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("sigma: 1", "radius: 010"))
    assert (
        "kernel.radius: expected a whole number, got '010' (leading zeros are ambiguous: write 10"
        in problems[0]
    )


def test_exponent_is_a_number(tmp_path: Path) -> None:
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", MINIMAL.replace("sigma: 1", "sigma: 1e0")))
    assert build_kernel(pipeline.step_configs()[0].kernel).params["sigma"] == 1.0
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", MINIMAL + "cval: 1e3\n"))
    assert pipeline.cval == 1000.0


def test_strict_types(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL + "bands: ['1', 0]\nnormalize: 1\n")
    assert any("bands[0]: expected a whole number, got '1' (remove the quotes)" in p for p in problems)
    assert any("bands[1]: input should be greater than or equal to 1, got 0" in p for p in problems)
    assert any("normalize: expected true or false, got 1" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "boundary: relfect\n",
            "boundary: expected one of reflect, mirror, nearest, wrap, constant, leave, got 'relfect'. "
            "Did you mean 'reflect'?",
        ),
        ("op: convolution\n", "Did you mean 'convolve'?"),
        ("nodata: nan-ish\n", "nodata: expected auto, none or a number, got 'nan-ish'"),
        ("bands: [1, 1]\n", "bands: a band is listed twice"),
        ("bands: []\n", "bands: list should have at least 1 item"),
    ],
)
def test_value_problems(tmp_path: Path, text: str, expected: str) -> None:
    problems = _problems(tmp_path, MINIMAL + text)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("text", "expected"), [("auto", "auto"), ("none", None), ("~", None), ("-9999", -9999.0)]
)
def test_nodata_values(tmp_path: Path, text: str, expected: object) -> None:
    assert load_pipeline(write_yaml(tmp_path / "p.yaml", MINIMAL + f"nodata: {text}\n")).nodata == expected


def test_compress_and_format(tmp_path: Path) -> None:
    text = MINIMAL + "  format: COG\n  compress: ZSTD\n"
    output = load_pipeline(write_yaml(tmp_path / "p.yaml", text)).output
    assert (output.format, output.compress) == ("COG", "zstd")
    problems = _problems(tmp_path, MINIMAL + "  format: cog\n")
    assert "output.format: expected one of GTiff, COG, got 'cog'" in problems[0]


def test_steps(tmp_path: Path) -> None:
    text = """\
input: a.tif
steps:
  - mask: {vector: roi.geojson, where: "landcover = 'water'"}
    kernel: {name: median, size: 3}
  - kernel: {name: sharpen, amount: 0.5}
    boundary: nearest
output: {path: o.tif}
"""
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", text))
    first, second = pipeline.step_configs()
    assert build_kernel(first.kernel).kind == "median" and first.mask is not None
    assert second.mask is None and second.boundary == "nearest" and second.op == "convolve"


def test_steps_and_top_level_kernel_conflict(tmp_path: Path) -> None:
    text = MINIMAL + "steps:\n  - kernel: {name: box}\n"
    problems = _problems(tmp_path, text)
    assert problems == [
        f"{tmp_path / 'p.yaml'}:2:1: kernel: 'kernel' given both at the top level and through 'steps': "
        "move it into each step"
    ]


def test_missing_kernel_and_steps(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "input: a.tif\noutput: {path: o.tif}\n")
    assert len(problems) == 1 and "missing required key 'kernel' (or 'steps')" in problems[0]


def test_step_error_location(tmp_path: Path) -> None:
    text = "input: a.tif\nsteps:\n  - kernel: {name: box}\n  - kernel: {name: box, size: -1}\n"
    text += "output: {path: o.tif}\n"
    problems = _problems(tmp_path, text)
    assert len(problems) == 1 and f"{tmp_path / 'p.yaml'}:4:13: steps[1].kernel: kernel 'box'" in problems[0]


def test_output_template(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("b.tif", "a.tif"):
        (tmp_path / "in" / name).write_bytes(b"")
    text = "input: in/*.tif\nkernel: {name: box}\noutput: {path: 'out/{parent}-{stem}.x.tif'}\n"
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", text))
    assert pipeline.scenes() == [
        (tmp_path / "in" / "a.tif", tmp_path / "out" / "in-a.x.tif"),
        (tmp_path / "in" / "b.tif", tmp_path / "out" / "in-b.x.tif"),
    ]
    same = load_pipeline(write_yaml(tmp_path / "q.yaml", text.replace("{parent}-{stem}", "same")))
    with pytest.raises(ConfigError, match="would both be written to"):
        same.scenes()
    problems = _problems(tmp_path, text.replace("{stem}", "{stam}"))
    assert "output.path: unknown placeholder {stam}: use {stem}, {name} or {parent}" in problems[0]
    nothing = load_pipeline(write_yaml(tmp_path / "r.yaml", text.replace("in/*.tif", "nothing/*.tif")))
    with pytest.raises(InputError, match="no file matches"):
        nothing.scenes()


def test_input_list(tmp_path: Path) -> None:
    text = "input: [a.tif, b.tif]\nkernel: {name: box}\noutput: {path: '{stem}.out.tif'}\n"
    pipeline = load_pipeline(write_yaml(tmp_path / "p.yaml", text))
    assert [out.name for _, out in pipeline.scenes()] == ["a.out.tif", "b.out.tif"]
    problems = _problems(tmp_path, text.replace("[a.tif, b.tif]", "[a.tif, 3]"))
    assert "input: expected a path, a glob or a list of paths, got 3" in problems[0]


def test_digest_is_stable_and_ignores_overwrite(tmp_path: Path) -> None:
    a = load_pipeline(write_yaml(tmp_path / "a.yaml", MINIMAL))
    b = load_pipeline(write_yaml(tmp_path / "b.yaml", "# comment\n" + MINIMAL + "  overwrite: true\n"))
    c = load_pipeline(write_yaml(tmp_path / "c.yaml", MINIMAL.replace("sigma: 1", "sigma: 2")))
    assert a.digest() == b.digest() != c.digest()
    assert len(a.digest()) == 64


def test_models_from_python() -> None:
    pipeline = Pipeline(input="scene.tif", kernel={"name": "box", "size": 5}, output={"path": "o.tif"})
    assert pipeline.input == ["scene.tif"] and pipeline.source is None
    assert build_kernel(StepConfig(kernel={"matrix": [[1.0]]}).kernel).shape == (1, 1)


def test_pipeline_problems_checks_files(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", MINIMAL + "mask: {vector: roi.geojson}\n")
    problems = [str(p) for p in pipeline_problems(path)]
    assert problems == [
        f"{path}:1:8: input: no such file: {tmp_path / 'scene.tif'}",
        f"{path}:7:16: mask.vector: no such vector file: {tmp_path / 'roi.geojson'}",
    ]
    (tmp_path / "scene.tif").write_bytes(b"")
    (tmp_path / "roi.geojson").write_text("{}")
    assert pipeline_problems(path) == []


def test_json_schema() -> None:
    schema = Pipeline.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"input", "output"}
    text = json.dumps(schema)
    for name in ("GaussianKernel", "MatrixKernel", "VectorMask", "sigma", "all_touched"):
        assert name in text
    scheduler = Profile.model_json_schema()["properties"]["scheduler"]
    assert scheduler["anyOf"][0]["enum"] == ["threads", "processes", "synchronous", "local-cluster"]
    assert scheduler["anyOf"][1]["pattern"].startswith("^(tcp|tls)://")


def test_profile(tmp_path: Path) -> None:
    text = "scheduler: processes\nworkers: 2\nwindow_size: 512\n"
    text += "gdal: {GDAL_CACHEMAX: 256, NUM_THREADS: ALL_CPUS}\n"
    profile = load_profile(write_yaml(tmp_path / "local.yaml", text))
    assert profile.gdal == {"GDAL_CACHEMAX": "256", "NUM_THREADS": "ALL_CPUS"}
    options = build_run_options(profile, workers=3, window_size=None)
    assert (options.scheduler, options.workers, options.window_size) == ("processes", 3, 512)
    assert options.gdal_options == {"GDAL_CACHEMAX": "256", "NUM_THREADS": "ALL_CPUS"}
    with pytest.raises(YamlError, match="window_size: input should be greater than or equal to 16"):
        load_profile(write_yaml(tmp_path / "bad.yaml", "window_size: 8\n"))
    with pytest.raises(YamlError, match="Did you mean 'scheduler'"):
        load_profile(write_yaml(tmp_path / "bad.yaml", "sheduler: threads\n"))


def test_profile_scheduler_address(tmp_path: Path) -> None:
    """A dask.distributed address (or local-cluster) and the local-cluster worker sizes reach RunOptions."""
    profile = load_profile(write_yaml(tmp_path / "cluster.yaml", "scheduler: tcp://10.0.0.1:8786\n"))
    assert build_run_options(profile).scheduler == "tcp://10.0.0.1:8786"
    text = "scheduler: local-cluster\nthreads_per_worker: 2\nmemory_limit: 2 GiB\n"
    lc = build_run_options(load_profile(write_yaml(tmp_path / "lc.yaml", text)))
    assert (lc.scheduler, lc.threads_per_worker, lc.memory_limit) == ("local-cluster", 2, "2 GiB")
    with pytest.raises(YamlError, match="memory_limit: expected bytes per worker with a unit"):
        load_profile(write_yaml(tmp_path / "bad.yaml", "memory_limit: 2 gigs\n"))
    assert build_run_options(profile, scheduler="threads").scheduler == "threads"
    with pytest.raises(YamlError, match=r"tcp://HOST:PORT, got 'thread'. Did you mean 'threads'\?"):
        load_profile(write_yaml(tmp_path / "bad.yaml", "scheduler: thread\n"))
    with pytest.raises(YamlError, match="got 'tcp://nohost'"):
        load_profile(write_yaml(tmp_path / "bad.yaml", "scheduler: tcp://nohost\n"))


def test_shipped_profiles() -> None:
    """configs/ holds the documented profiles, each valid and commented on every key."""
    paths = sorted(CONFIGS.glob("*.yaml"))
    assert [p.name for p in paths] == [
        "cluster.yaml",
        "kubernetes.yaml",
        "local-cluster.yaml",
        "local.yaml",
        "processes.yaml",
        "slurm.yaml",
    ]
    for path in paths:
        profile = load_profile(path)
        text = path.read_text()
        for key in Profile.model_fields:
            assert f"\n{key}:" in text, f"{path.name} does not set {key}"
        assert text.startswith("#")
        assert profile.scheduler == {"local": "threads", "processes": "processes"}.get(
            path.stem, profile.scheduler
        )
        if path.stem in ("slurm", "kubernetes"):  # the factory is imported at run time, not here
            assert profile.cluster is not None and build_run_options(profile).scheduler == "cluster"
    assert build_run_options(load_profile(CONFIGS / "local.yaml")) == build_run_options(
        Profile(), gdal_options={"GDAL_CACHEMAX": "512"}
    )


@pytest.mark.parametrize("path", shipped_pipelines(), ids=lambda p: p.name)
def test_shipped_pipelines_validate(path: Path) -> None:
    assert pipeline_problems(path) == []


def test_literal_choices_match_the_engine() -> None:
    """The schema's choices are the engine's (they are declared apart to keep `validate` light)."""
    from typing import get_args

    from geomask import convolve, windows
    from geomask.config import Boundary, Op

    assert set(get_args(Boundary)) == set(get_args(windows.Mode))
    assert set(get_args(Op)) == set(get_args(convolve.Op))


@pytest.mark.parametrize(
    "template",
    ["{stem:>2000000000}.tif", "{stem!r}.tif", "{0}.tif", "{}.tif", "{stem.x}.tif", "{stem[0]}.tif", "{stem"],
)
def test_output_template_placeholders_only(tmp_path: Path, template: str) -> None:
    text = f"input: a.tif\nkernel: {{name: box}}\noutput: {{path: 'out/{template}'}}\n"
    problems = _problems(tmp_path, text)
    assert (
        len(problems) == 1 and "output.path: " in problems[0] and "{stem}, {name} or {parent}" in problems[0]
    )


def test_parent_is_the_same_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.tif").write_bytes(b"")
    text = "input: a.tif\nkernel: {name: box}\noutput: {path: 'out/{parent}/{stem}.tif'}\n"
    write_yaml(tmp_path / "proj" / "p.yaml", text)
    outputs = []
    for cwd, path in (
        (tmp_path, "proj/p.yaml"),
        (tmp_path / "proj", "p.yaml"),
        (tmp_path / "out", "../proj/p.yaml"),
    ):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        [(_, output)] = load_pipeline(path).scenes()
        outputs.append(Path(output).resolve())
    assert outputs == [tmp_path / "proj" / "out" / "proj" / "a.tif"] * 3


@pytest.mark.parametrize(
    ("scene", "template", "value"),
    [
        ("...tif", "out/{stem}.tif", "'..'"),
        ("https://example.com/x/../a.tif", "out/{parent}/{stem}.tif", "'..'"),
        ("https://example.com/a.tif?x=1", "out/{parent}/{name}", None),
    ],
)
def test_placeholder_that_would_escape_is_refused_at_validation(
    tmp_path: Path, scene: str, template: str, value: str | None
) -> None:
    if "://" not in scene:
        (tmp_path / scene).write_bytes(b"")
    text = f"input: '{scene}'\nkernel: {{name: box}}\noutput: {{path: '{template}'}}\n"
    problems = [str(p) for p in pipeline_problems(write_yaml(tmp_path / "p.yaml", text))]
    if value is None:
        assert problems == []
        return
    assert len(problems) == 1 and "output.path: " in problems[0] and f"is {value}" in problems[0], problems
    with pytest.raises(ConfigError, match="a placeholder must be a plain file or folder name"):
        load_pipeline(tmp_path / "p.yaml").scenes()


def test_profile_cluster_section(tmp_path: Path) -> None:
    """cluster: validates its shape only (the class is imported at run time) and excludes scheduler:."""
    text = "cluster:\n  factory: dask_jobqueue.SLURMCluster\n  options: {cores: 8}\n  scale: {workers: 3}\n"
    options = build_run_options(load_profile(write_yaml(tmp_path / "ok.yaml", text)))
    assert options.scheduler == "cluster" and options.cluster is not None
    assert (options.cluster.factory, dict(options.cluster.options), options.cluster.workers) == (
        "dask_jobqueue.SLURMCluster",
        {"cores": 8},
        3,
    )
    with pytest.raises(YamlError, match="remove scheduler: local-cluster"):
        load_profile(write_yaml(tmp_path / "both.yaml", "scheduler: local-cluster\n" + text))
    with pytest.raises(YamlError, match="not both"):
        load_profile(
            write_yaml(tmp_path / "s.yaml", text.replace("{workers: 3}", "{workers: 3, maximum: 5}"))
        )
    with pytest.raises(YamlError, match=r"minimum \(5\) is above maximum \(2\)"):
        load_profile(
            write_yaml(tmp_path / "m.yaml", text.replace("{workers: 3}", "{minimum: 5, maximum: 2}"))
        )
    with pytest.raises(YamlError, match=r"cluster\.factory"):
        load_profile(
            write_yaml(tmp_path / "f.yaml", text.replace("dask_jobqueue.SLURMCluster", "SLURMCluster"))
        )
