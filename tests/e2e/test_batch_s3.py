"""`imaged batch` from a moto S3 source prefix to S3 outputs, through the production
client with AWS_ENDPOINT_URL: the same keys, manifest and exit status as a directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.batch_support import (
    BUCKET,
    IMAGES,
    TREE,
    by_source,
    expected_keys,
    make_tree,
    read_manifest,
    run_batch,
    write_config,
)
from tests.motoserver import MotoS3

SOURCE_BUCKET = "photos"
PREFIX = "uploads/"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3().start()
    s3 = server.client()
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    s3.create_bucket(Bucket=BUCKET)
    tree = make_tree(tmp_path_factory.mktemp("tree"))
    for key in TREE:
        s3.put_object(Bucket=SOURCE_BUCKET, Key=PREFIX + key, Body=(tree / key).read_bytes())
    s3.put_object(Bucket=SOURCE_BUCKET, Key=PREFIX + "folder/", Body=b"")  # a folder marker
    s3.put_object(Bucket=SOURCE_BUCKET, Key="elsewhere/other.jpg", Body=b"outside the prefix")
    yield server
    server.stop()


def _objects(s3: Any, bucket: str) -> dict[str, int]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return found


def test_s3_source_to_s3_outputs(moto: MotoS3, tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    result = run_batch(
        ["--config", "config.json", "--source", f"s3://{SOURCE_BUCKET}/uploads", "--workers", "2"],
        cwd=tmp_path,
        env=moto.env,
    )
    assert result.returncode == 1, result.stderr  # the corrupt file and the text file
    assert result.stdout.splitlines()[-1].startswith("processed 6 sources: 4 succeeded, 2 failed")
    s3 = moto.client()
    stored = _objects(s3, BUCKET)
    assert set(stored) == {key for source in IMAGES for key in expected_keys(source).values()}
    found = by_source(read_manifest(tmp_path / "imaged-batch.jsonl"))
    assert set(found) == set(TREE)  # relative to the prefix; no folder marker, nothing outside
    for source in IMAGES:
        for task in found[source]["tasks"]:
            key = expected_keys(source)[task["id"]]
            assert task["output"]["url"] == f"{moto.endpoint}/{BUCKET}/{key}"
            assert task["output"]["size"] == stored[key]
    head = s3.head_object(Bucket=BUCKET, Key=expected_keys("top.jpg")["thumb"])
    assert head["ContentType"] == "image/webp"


def test_missing_bucket_is_reported(moto: MotoS3, tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    result = run_batch(
        ["--config", "config.json", "--source", "s3://no-such-bucket/x"],
        cwd=tmp_path,
        env=moto.env,
    )
    assert result.returncode == 2
    assert "imaged batch: cannot list s3://no-such-bucket/x/: " in result.stderr
    assert "The specified bucket does not exist" in result.stderr
