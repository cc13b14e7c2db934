"""s3:// inputs and outputs against a local S3 server (moto, started on 127.0.0.1 by the tests)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from _fixtures_cli import make_roi, make_scene, write_yaml
from typer.testing import CliRunner

from geomask.cli import app

boto3 = pytest.importorskip("boto3", reason="the S3 tests need boto3 (test extra)")
moto_server = pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (test extra)")

BUCKET = "geomask-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server with IAM auth on, a bucket holding a scene and its ROI, and its credentials."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", "region_name": "us-east-1"}
    iam = boto3.client("iam", endpoint_url=endpoint, **setup)
    iam.create_user(UserName="geomask")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="geomask", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="geomask")["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
    client.create_bucket(Bucket=BUCKET)
    _auth(endpoint, "0")  # from now on every request must be signed by a known key
    try:
        yield {"endpoint": endpoint, "host": f"{host}:{port}", "client": client, **creds}
    finally:
        _auth(endpoint, "inf")
        server.stop()


def _auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        endpoint + "/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture
def env(s3, monkeypatch) -> dict[str, Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": s3["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3["aws_secret_access_key"],
        "AWS_S3_ENDPOINT": s3["host"],
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_REGION": "us-east-1",
        "GDAL_HTTP_MAX_RETRY": "0",
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    }.items():
        monkeypatch.setenv(name, value)
    return s3


def _upload(s3, tmp_path: Path, prefix: str) -> None:
    make_scene(tmp_path / "scene.tif", width=120, height=90, tiled=True)
    make_roi(tmp_path / "roi.geojson")
    s3["client"].upload_file(str(tmp_path / "scene.tif"), BUCKET, f"{prefix}/scene.tif")
    s3["client"].upload_file(str(tmp_path / "roi.geojson"), BUCKET, f"{prefix}/roi.geojson")


def _pipeline(folder: Path, name: str, source: str, roi: str, output: str, **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "input": source,
        "mask": {"vector": roi},
        "kernel": {"name": "gaussian", "sigma": 1},
        "output": {"path": output, "format": "COG", **extra},
    }
    return write_yaml(folder / name, document)


def _run(pipeline: Path) -> Any:
    return CliRunner().invoke(app, ["run", str(pipeline), "--quiet"])


def test_s3_input_and_output_round_trip(env, tmp_path):
    _upload(env, tmp_path, "rt")
    remote = _pipeline(
        tmp_path / "remote",
        "p.yaml",
        f"s3://{BUCKET}/rt/scene.tif",
        f"s3://{BUCKET}/rt/roi.geojson",
        f"s3://{BUCKET}/rt/out/scene.denoised.tif",
    )
    local = _pipeline(tmp_path, "local.yaml", "scene.tif", "roi.geojson", "out/scene.denoised.tif")
    result = _run(remote)
    assert result.exit_code == 0, result.output
    assert f"s3://{BUCKET}/rt/out/scene.denoised.tif" in result.output
    assert _run(local).exit_code == 0
    fetched = tmp_path / "fetched.tif"
    env["client"].download_file(BUCKET, "rt/out/scene.denoised.tif", str(fetched))
    with rasterio.open(fetched) as got, rasterio.open(tmp_path / "out" / "scene.denoised.tif") as want:
        np.testing.assert_array_equal(got.read(), want.read())  # the same pixels, bit for bit
        assert (got.profile, got.overviews(1)) == (want.profile, want.overviews(1))
        assert got.tags()["GEOMASK_MASK"] == want.tags()["GEOMASK_MASK"]
    with rasterio.open(fetched) as got, rasterio.open(tmp_path / "scene.tif") as scene:
        assert not np.array_equal(got.read(), scene.read())
    keys = {o["Key"] for o in env["client"].list_objects_v2(Bucket=BUCKET, Prefix="rt/out/")["Contents"]}
    assert keys == {"rt/out/scene.denoised.tif"}  # no temporary objects


def test_missing_object_is_one_line_naming_the_url(env, tmp_path):
    _upload(env, tmp_path, "missing")
    url = f"s3://{BUCKET}/missing/nope.tif"
    result = _run(_pipeline(tmp_path, "p.yaml", url, str(tmp_path / "roi.geojson"), "out.tif"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and url in lines[0]


def test_wrong_credentials_are_one_line_naming_the_url(env, tmp_path, monkeypatch):
    _upload(env, tmp_path, "creds")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    url = f"s3://{BUCKET}/creds/scene.tif"
    result = _run(_pipeline(tmp_path, "p.yaml", url, str(tmp_path / "roi.geojson"), "out.tif"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "signature" in lines[0]


def test_unreachable_endpoint_is_one_line_naming_the_url(env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_S3_ENDPOINT", "127.0.0.1:9")  # nothing listens on the discard port
    url = f"s3://{BUCKET}/nowhere/scene.tif"
    make_roi(tmp_path / "roi.geojson")
    result = _run(_pipeline(tmp_path, "p.yaml", url, "roi.geojson", "out.tif"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "connect" in lines[0]


def test_failed_upload_leaves_no_object_and_no_local_file(env, tmp_path):
    make_scene(tmp_path / "scene.tif")
    make_roi(tmp_path / "roi.geojson")
    url = "s3://no-such-bucket-geomask/out/scene.tif"
    result = _run(_pipeline(tmp_path, "p.yaml", "scene.tif", "roi.geojson", url))
    assert result.exit_code == 1
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and url in lines[0] and "upload failed" in lines[0]
    buckets = {b["Name"] for b in env["client"].list_buckets()["Buckets"]}
    assert "no-such-bucket-geomask" not in buckets
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml", "roi.geojson", "scene.tif"]


def test_urls_are_left_alone_by_the_pipeline_paths(tmp_path):
    pipeline = _pipeline(
        tmp_path,
        "p.yaml",
        f"s3://{BUCKET}/a/scene.tif",
        "https://example.com/roi.geojson",
        f"s3://{BUCKET}/out/{{stem}}.masked.tif",
    )
    from geomask.config import load_pipeline

    model = load_pipeline(pipeline)
    assert model.input == [f"s3://{BUCKET}/a/scene.tif"]
    assert str(model.mask.vector) == "https://example.com/roi.geojson"
    assert [tuple(map(str, pair)) for pair in model.scenes()] == [
        (f"s3://{BUCKET}/a/scene.tif", f"s3://{BUCKET}/out/scene.masked.tif")
    ]
