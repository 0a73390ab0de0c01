"""S3 (and S3-compatible) back-end on aiobotocore (pipeline.md, S3).

Configuration comes only from the documented environment variables, read once at
startup: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (optional),
`AWS_REGION` (unset/empty → us-east-1) and `AWS_ENDPOINT_URL` (unset/empty → AWS).
Shared AWS config files and other endpoint variables are deliberately not consulted, so
the reported object URL always names the endpoint really used.

Each object is one signed (SigV4) PUT (for `imaged batch`, sources are listed with
ListObjectsV2 page by page and read with one GET each); custom endpoints use path-style
addressing, which every S3-compatible service understands. Checksums are sent only where
S3 requires them, for compatibility with services that do not know the newer checksum
headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imaged.pipeline.storage.base import StorageError, too_large

DEFAULT_REGION = "us-east-1"
# Every variable `from_environ` reads: what a batch hands its workers (another node's
# environment is not the driver's).
ENVIRONMENT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
)


def configuration(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of `environ` that configures the back-end (`ENVIRONMENT`)."""
    return {name: environ[name] for name in ENVIRONMENT if name in environ}


LIST_PAGE_SIZE = 1000  # keys per ListObjectsV2 page (the service's maximum)


def _error_text(exc: ClientError | BotoCoreError) -> str:
    """The service's own message (e.g. `The specified bucket does not exist`), else the
    client's description of the failure."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = str(error.get("Message") or "").strip()
        if message:
            return message
        code = str(error.get("Code") or "").strip()
        if code:
            return f"S3 error {code}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _load_models(session: Any) -> None:
    """Warm the session's data-loader cache with what creating an S3 client reads."""
    try:
        loader = session.get_component("data_loader")
        for kind in ("service-2", "endpoint-rule-set-1"):
            loader.load_service_model("s3", kind)
        for name in ("partitions", "endpoints", "sdk-default-configuration", "_retry"):
            loader.load_data(name)
    except Exception:  # best effort: create_client loads whatever is missing itself
        return


class S3Storage:
    """One long-lived client (connection pool), created on first use inside the loop."""

    backend = "s3"

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        region: str = DEFAULT_REGION,
        endpoint_url: str | None = None,
        max_connections: int = 32,
    ) -> None:
        self.region = region or DEFAULT_REGION
        self.endpoint_url = endpoint_url or None
        self._credentials = (access_key_id, secret_access_key, session_token or None)
        self._config = Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max_connections,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            ignore_configured_endpoint_urls=True,
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> S3Storage:
        """The back-end configured by `environ`'s `ENVIRONMENT` variables."""
        return cls(
            access_key_id=environ.get("AWS_ACCESS_KEY_ID", ""),
            secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY", ""),
            session_token=environ.get("AWS_SESSION_TOKEN") or None,
            region=environ.get("AWS_REGION") or DEFAULT_REGION,
            endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
        )

    def object_url(self, bucket: str, key: str) -> str:
        """The informational URL of the spec (not percent-encoded)."""
        if self.endpoint_url:
            base = self.endpoint_url[:-1] if self.endpoint_url.endswith("/") else self.endpoint_url
            return f"{base}/{bucket}/{key}"
        return f"https://{bucket}.s3.{self.region}.amazonaws.com/{key}"

    async def client(self) -> Any:
        async with self._lock:
            if self._client is None:
                access_key_id, secret_access_key, session_token = self._credentials
                session = get_session()
                # Loading botocore's model files takes ~0.3 s of blocking I/O and parsing:
                # do it in a thread so the first pipeline request does not stall the loop.
                await asyncio.to_thread(_load_models, session)
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    session.create_client(
                        "s3",
                        region_name=self.region,
                        endpoint_url=self.endpoint_url,
                        aws_access_key_id=access_key_id,
                        aws_secret_access_key=secret_access_key,
                        aws_session_token=session_token,
                        config=self._config,
                    )
                )
                self._stack = stack
            return self._client

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str, acl: str | None
    ) -> str:
        request: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
        }
        if acl is not None:
            request["ACL"] = acl
        try:
            client = await self.client()
            await client.put_object(**request)
        except (ClientError, BotoCoreError) as exc:
            # What the service or the client reports (no such bucket, access denied, invalid
            # bucket name, unreachable endpoint, timeout) is the task's error text verbatim.
            # Anything else is a fault: it propagates, and the executor logs it.
            raise StorageError(_error_text(exc)) from exc
        return self.object_url(bucket, key)

    async def list_keys(
        self, bucket: str, prefix: str, page_size: int = LIST_PAGE_SIZE
    ) -> AsyncIterator[str]:
        """Every key of `bucket` under `prefix`, page by page (ListObjectsV2), in the
        service's order; keys ending in `/` (folder markers) are left out."""
        try:
            client = await self.client()
            paginator = client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
            )
            async for page in pages:
                for item in page.get("Contents", ()):
                    key = str(item["Key"])
                    if not key.endswith("/"):
                        yield key
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(_error_text(exc)) from exc

    async def get(self, bucket: str, key: str, limit: int) -> bytes:
        """Object `key` of `bucket`, at most `limit` bytes (StorageError beyond)."""
        try:
            client = await self.client()
            response = await client.get_object(Bucket=bucket, Key=key)
            size = int(response.get("ContentLength") or 0)
            async with response["Body"] as body:
                if size > limit:
                    raise StorageError(too_large(size, limit))
                data = bytes(await body.read())
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(_error_text(exc)) from exc
        if len(data) > limit:
            raise StorageError(too_large(len(data), limit))
        return data

    async def close(self) -> None:
        async with self._lock:
            if self._stack is not None:
                await self._stack.aclose()
            self._stack = None
            self._client = None
