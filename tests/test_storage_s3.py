"""The S3 back-end through its real client against a real S3-compatible server (moto)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from imaged.pipeline.storage.base import StorageError
from imaged.pipeline.storage.s3 import S3Storage
from tests.motoserver import MotoS3

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    server = MotoS3().start()
    server.client().create_bucket(Bucket="store-bucket")
    yield server
    server.stop()


@pytest.fixture
async def storage(moto: MotoS3) -> AsyncIterator[S3Storage]:
    store = S3Storage.from_environ(moto.env)
    yield store
    await store.close()


def grants(moto: MotoS3, key: str) -> list[tuple[str, str]]:
    acl = moto.client().get_object_acl(Bucket="store-bucket", Key=key)
    return sorted(
        (g["Grantee"].get("URI") or g["Grantee"]["Type"], g["Permission"]) for g in acl["Grants"]
    )


async def test_put_stores_bytes_content_type_and_returns_the_endpoint_url(
    moto: MotoS3, storage: S3Storage
) -> None:
    data = bytes(range(256)) * 100
    url = await storage.put("store-bucket", "dir/my file (1).png", data, "image/png", None)
    assert url == f"{moto.endpoint}/store-bucket/dir/my file (1).png"
    obj = moto.client().get_object(Bucket="store-bucket", Key="dir/my file (1).png")
    assert obj["Body"].read() == data
    assert obj["ContentType"] == "image/png"
    assert grants(moto, "dir/my file (1).png") == [("CanonicalUser", "FULL_CONTROL")]


async def test_canned_acl_is_sent(moto: MotoS3, storage: S3Storage) -> None:
    await storage.put("store-bucket", "public.webp", b"RIFF....WEBP", "image/webp", "public-read")
    assert grants(moto, "public.webp") == [("CanonicalUser", "FULL_CONTROL"), (ALL_USERS, "READ")]
    await storage.put("store-bucket", "private.webp", b"x", "image/webp", "private")
    assert grants(moto, "private.webp") == [("CanonicalUser", "FULL_CONTROL")]


async def test_missing_bucket_is_a_storage_error_naming_the_problem(storage: S3Storage) -> None:
    with pytest.raises(StorageError) as info:
        await storage.put("no-such-bucket", "k", b"x", "image/png", None)
    assert str(info.value) == "The specified bucket does not exist"


async def test_client_side_validation_errors_are_storage_errors(storage: S3Storage) -> None:
    with pytest.raises(StorageError, match="Invalid bucket name"):
        await storage.put("bad/bucket", "k", b"x", "image/png", None)


async def test_unreachable_endpoint_is_a_storage_error() -> None:
    from tests.serverproc import free_port

    store = S3Storage(
        access_key_id="a",
        secret_access_key="b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    try:
        with pytest.raises(StorageError, match="Could not connect"):
            await store.put("bucket", "k", b"x", "image/png", None)
    finally:
        await store.close()


async def test_one_client_serves_concurrent_puts(moto: MotoS3, storage: S3Storage) -> None:
    import asyncio

    keys = [f"concurrent/{i}" for i in range(8)]
    await asyncio.gather(
        *(storage.put("store-bucket", k, k.encode(), "image/png", None) for k in keys)
    )
    client = moto.client()
    for k in keys:
        assert client.get_object(Bucket="store-bucket", Key=k)["Body"].read() == k.encode()
    assert await storage.client() is await storage.client()


@pytest.mark.parametrize(
    ("environ", "bucket", "key", "url"),
    [
        (
            {"AWS_ENDPOINT_URL": "http://localhost:4566"},
            "my-bucket",
            "file.txt",
            "http://localhost:4566/my-bucket/file.txt",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://localhost:4566/"},
            "my-bucket",
            "file.txt",
            "http://localhost:4566/my-bucket/file.txt",
        ),
        (
            {"AWS_ENDPOINT_URL": "https://s3.example.com/base//"},
            "b",
            "k",
            "https://s3.example.com/base//b/k",
        ),
        (
            {"AWS_REGION": "us-west-1"},
            "bucket",
            "path/to/my file (1).jpg",
            "https://bucket.s3.us-west-1.amazonaws.com/path/to/my file (1).jpg",
        ),
        ({}, "bucket", "", "https://bucket.s3.us-east-1.amazonaws.com/"),
        (
            {"AWS_REGION": "", "AWS_ENDPOINT_URL": ""},
            "b",
            "k",
            "https://b.s3.us-east-1.amazonaws.com/k",
        ),
    ],
)
def test_object_url(environ: dict[str, str], bucket: str, key: str, url: str) -> None:
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", **environ}
    assert S3Storage.from_environ(env).object_url(bucket, key) == url


async def test_environment_configures_the_client(moto: MotoS3) -> None:
    env: dict[str, Any] = {
        **moto.env,
        "AWS_REGION": "eu-west-2",
        "AWS_SESSION_TOKEN": "session-token-value",
    }
    store = S3Storage.from_environ(env)
    try:
        client = await store.client()
        credentials = await client._get_credentials().get_frozen_credentials()
        assert credentials.access_key == moto.env["AWS_ACCESS_KEY_ID"]
        assert credentials.secret_key == moto.env["AWS_SECRET_ACCESS_KEY"]
        assert credentials.token == "session-token-value"
        assert client.meta.region_name == "eu-west-2"
        assert client.meta.endpoint_url == moto.endpoint
        assert client.meta.config.s3["addressing_style"] == "path"
        assert client.meta.config.signature_version == "s3v4"
    finally:
        await store.close()
    no_token = S3Storage.from_environ({**moto.env, "AWS_SESSION_TOKEN": ""})
    try:
        credentials = await (await no_token.client())._get_credentials().get_frozen_credentials()
        assert credentials.token is None
    finally:
        await no_token.close()


async def test_a_fault_that_is_not_an_s3_error_propagates(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what the service or the client reports becomes a StorageError (the task's error
    text); a fault (here: a broken client) propagates, so the executor logs it."""

    class BrokenClient:
        async def put_object(self, **request: Any) -> None:
            assert request["Bucket"] == "store-bucket"
            raise RuntimeError("bug in the upload path")

    async def broken() -> Any:
        return BrokenClient()

    monkeypatch.setattr(storage, "client", broken)
    with pytest.raises(RuntimeError, match="bug in the upload path"):
        await storage.put("store-bucket", "k", b"x", "image/png", None)


async def test_list_keys_pages_through_the_prefix(moto: MotoS3, storage: S3Storage) -> None:
    s3 = moto.client()
    s3.create_bucket(Bucket="listing")
    keys = [f"p/{i:02d} é.jpg" for i in range(7)]
    for key in [*keys, "p/folder/", "q/outside.jpg"]:
        s3.put_object(Bucket="listing", Key=key, Body=b"x")
    listed = [key async for key in storage.list_keys("listing", "p/", page_size=2)]
    assert listed == keys  # 4 pages, folder marker and other prefixes left out


async def test_list_keys_of_a_missing_bucket_fails(storage: S3Storage) -> None:
    with pytest.raises(StorageError, match="The specified bucket does not exist"):
        [key async for key in storage.list_keys("no-such-bucket", "")]


async def test_get_reads_within_the_limit(moto: MotoS3, storage: S3Storage) -> None:
    moto.client().put_object(Bucket="store-bucket", Key="src/a.bin", Body=b"0123456789")
    assert await storage.get("store-bucket", "src/a.bin", 10) == b"0123456789"
    with pytest.raises(StorageError) as info:
        await storage.get("store-bucket", "src/a.bin", 9)
    assert str(info.value) == "source of 10 bytes exceeds the body limit of 9 bytes"
    with pytest.raises(StorageError, match="does not exist"):
        await storage.get("store-bucket", "src/missing.bin", 10)
