"""A real S3-compatible HTTP server on loopback for the pipeline tests (moto's server)."""

from __future__ import annotations

from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.serverproc import free_port

ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"


class MotoS3:
    """moto's standalone server in a thread; `env` is what an imaged server needs to use
    it through `AWS_ENDPOINT_URL`; `client()` is a boto3 client for checking objects."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> MotoS3:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
