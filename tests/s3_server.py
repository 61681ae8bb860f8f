"""A local S3-compatible server for the S3 adapter's tests: moto's standalone server on a free
loopback port, started by the tests (never a real cloud). Import ``s3_endpoint`` as a fixture."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from infra.embedded._process import free_port
from infra.settings import Settings


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/", timeout=1.0)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_settings(endpoint: str, **changes: object) -> Settings:
    """Settings selecting a fresh bucket (created by the caller) on the local S3 server."""
    bucket = f"eco2-{uuid.uuid4().hex[:12]}"
    return Settings(
        media_url=f"s3://{bucket}/media",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    ).with_(**changes)
