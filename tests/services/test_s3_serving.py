"""Reading archives from an S3-compatible bucket, against a real S3-protocol server (moto's, a
subprocess on 127.0.0.1: tests/s3.py): playback with Range through the media view's presigned
redirect (followed with requests, as the browser follows it), share links, the bulk zip."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from django.urls import reverse

from jobs.lib.names import download_name
from jobs.models import Video
from jobs.services import bulk, sharing
from remixsite.settings import s3_origins
from tests.conftest import drive
from tests.s3 import REGION, URL_SECONDS, S3Server


@pytest.fixture
def in_bucket(completed: Video, s3_archive: S3Server) -> Video:
    """The simulator's video, archived into the bucket."""
    drive(lambda: Video.objects.get(pk=completed.pk).playable)
    return Video.objects.get(pk=completed.pk)


def follow(location: str, range_header: str) -> requests.Response:
    """What the browser does with the redirect: ask the bucket, with the same Range."""
    return requests.get(location, headers={"Range": range_header}, timeout=10)


def test_the_player_seeks_through_a_presigned_redirect(
    alice_client: Client, in_bucket: Video, s3_archive: S3Server
) -> None:
    name = str(in_bucket.video_file.name)
    whole = s3_archive.objects()[name]
    r = alice_client.get(reverse("jobs:media", args=[name]), headers={"Range": "bytes=100-1099"})
    assert r.status_code == 302
    location = r["Location"]
    assert location.startswith(f"{s3_archive.endpoint}/{s3_archive.bucket}/{name}?")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(URL_SECONDS)]  # short-lived
    assert "private" in r["Cache-Control"] and f"max-age={URL_SECONDS // 3}" in r["Cache-Control"]
    part = follow(location, "bytes=100-1099")
    assert part.status_code == 206
    assert part.content == whole[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    assert part.headers["Content-Type"] == "video/mp4"
    filename = download_name(in_bucket.pk, in_bucket.prompt, name)
    assert part.headers["Content-Disposition"].startswith("inline")  # the player plays it
    assert filename in part.headers["Content-Disposition"]
    assert follow(location, "bytes=-16").content == whole[-16:]


def test_the_download_button_gets_an_attachment_under_its_name(
    alice_client: Client, in_bucket: Video
) -> None:
    name = str(in_bucket.video_file.name)
    r = alice_client.get(reverse("jobs:media", args=[name]), headers={"Sec-Fetch-Mode": "navigate"})
    answer = requests.get(r["Location"], timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert (
        download_name(in_bucket.pk, in_bucket.prompt, name) in answer.headers["Content-Disposition"]
    )


def test_the_redirect_is_only_for_someone_logged_in(client: Client, in_bucket: Video) -> None:
    r = client.get(reverse("jobs:media", args=[str(in_bucket.video_file.name)]))
    assert r.status_code == 302 and "X-Amz-Signature" not in r["Location"]
    assert r["Location"].startswith(reverse("login"))


def test_the_content_security_policy_allows_where_the_redirect_goes(
    alice_client: Client, in_bucket: Video, s3_archive: S3Server
) -> None:
    r = alice_client.get(reverse("jobs:media", args=[str(in_bucket.thumbnail_file.name)]))
    parts = urlsplit(r["Location"])
    origins = s3_origins(
        bucket=s3_archive.bucket, endpoint_url=s3_archive.endpoint, region=REGION,
        addressing_style="path",
    )  # fmt: skip
    assert f"{parts.scheme}://{parts.netloc}" in origins


@pytest.mark.parametrize("path", [".partial/1-video.part", "archive/../.partial/x", "/etc/passwd"])
def test_no_redirect_for_a_name_outside_the_archive(
    alice_client: Client, s3_archive: S3Server, path: str
) -> None:
    assert alice_client.get("/media/" + path).status_code == 404


def test_a_share_link_plays_from_the_bucket_and_is_never_cached(
    client: Client, in_bucket: Video, s3_archive: S3Server, alice
) -> None:
    Video.objects.filter(pk=in_bucket.pk).update(owner=alice)
    in_bucket.refresh_from_db()
    link = sharing.create_link(user=alice, target=in_bucket, expires="7")
    url = reverse("jobs:shared-media", args=[link.token, in_bucket.pk, "video"])
    r = client.get(url, headers={"Range": "bytes=0-63"})  # no log-in: the link is the key
    assert r.status_code == 302 and "no-store" in r["Cache-Control"]
    part = follow(r["Location"], "bytes=0-63")
    assert part.status_code == 206
    assert part.content == s3_archive.objects()[str(in_bucket.video_file.name)][:64]
    sharing.revoke_link(user=alice, link=link)
    assert client.get(url).status_code == 410  # no new URL once revoked


def test_the_bulk_zip_reads_the_files_from_the_bucket(
    alice, in_bucket: Video, s3_archive: S3Server
) -> None:
    download = bulk.run(user=alice, action="zip", ids=[str(in_bucket.pk)])
    assert isinstance(download, bulk.ZipDownload)
    body = b"".join(download.chunks)
    assert len(body) == download.size  # the announced Content-Length holds
    objects = s3_archive.objects()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        for field in bulk.FILE_FIELDS:
            name = str(getattr(in_bucket, field).name)
            entry = download_name(in_bucket.pk, in_bucket.prompt, name)
            assert archive.read(entry) == objects[name]


def test_a_file_lost_from_the_bucket_is_left_out_of_the_zip(
    alice, in_bucket: Video, s3_archive: S3Server
) -> None:
    sheet = str(in_bucket.spritesheet_file.name)
    s3_archive.client().delete_object(Bucket=s3_archive.bucket, Key=sheet)
    download = bulk.run(user=alice, action="zip", ids=[str(in_bucket.pk)])
    assert isinstance(download, bulk.ZipDownload)
    with zipfile.ZipFile(io.BytesIO(b"".join(download.chunks))) as archive:
        assert len(archive.namelist()) == 2


@pytest.mark.parametrize(
    ("endpoint", "region", "style", "expected"),
    [
        ("", "eu-central-1", "virtual", ["https://arch.s3.eu-central-1.amazonaws.com"]),
        ("", "us-east-1", "virtual", ["https://arch.s3.us-east-1.amazonaws.com",
                                      "https://arch.s3.amazonaws.com"]),
        ("https://minio.example.com:9000", "us-east-1", "path", ["https://minio.example.com:9000"]),
        ("https://rgw.example.com", "default", "virtual", ["https://arch.rgw.example.com"]),
    ],
)  # fmt: skip
def test_the_csp_origin_follows_the_endpoint_and_addressing_style(
    endpoint: str, region: str, style: str, expected: list[str]
) -> None:
    found = s3_origins(bucket="arch", endpoint_url=endpoint, region=region, addressing_style=style)
    assert found == expected
