"""A real S3-protocol server for the storage tests: moto's standalone server, started as its own
process (`python -m moto.server`) on a free 127.0.0.1 port, with one bucket for the session.
The dashboard talks to it over HTTP through django-storages and boto3, exactly as it would to
MinIO, Ceph or AWS; nothing is mocked in-process.

tests/conftest.py loads this module as a plugin, so `s3_server` and `s3_archive` are fixtures.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from simulator.testing import free_port, stop_process, wait_port

if TYPE_CHECKING:
    from pytest_django import Settings

BUCKET = "remix-archive-tests"
REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-key"
URL_SECONDS = 60


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object in the bucket (under `prefix`), read back over HTTP."""
        client = self.client()
        found = client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {
            o["Key"]: client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            for o in found
        }

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.client().head_object(Bucket=self.bucket, Key=key))

    def empty(self) -> None:
        client = self.client()
        for o in client.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            client.delete_object(Bucket=self.bucket, Key=o["Key"])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server in a subprocess for the whole session, and its bucket."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_port(port, proc, timeout=60)
        server = S3Server(f"http://127.0.0.1:{port}", BUCKET)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        stop_process(proc)


def storages_for(settings: Settings, server: S3Server, *, bucket: str | None = None) -> None:
    """Point the archive at `server`'s bucket, configured as ARCHIVE_STORAGE=s3 configures it."""
    from remixsite.settings import s3_storage  # the settings module, once Django has loaded it

    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(
            bucket=bucket or server.bucket,
            endpoint_url=server.endpoint,
            region=REGION,
            addressing_style="path",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            expire=URL_SECONDS,
        ),
    }


@pytest.fixture
def s3_archive(settings: Settings, s3_server: S3Server) -> Iterator[S3Server]:
    """This test archives to the session's bucket, empty at the start and emptied after."""
    s3_server.empty()
    storages_for(settings, s3_server)
    yield s3_server
    s3_server.empty()
