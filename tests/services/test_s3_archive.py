"""Archives in an S3-compatible bucket (ARCHIVE_STORAGE=s3), against a real S3-protocol server
(moto's, a subprocess on 127.0.0.1: tests/s3.py): stored after verification, all three files or
none, deleted with the video, re-checked by verify_archives, reference images too."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError
from django.core.management import call_command
from django.core.management.base import CommandError

from jobs import archive
from jobs.lib import media_check
from jobs.models import Video
from jobs.services.manage import delete_video
from jobs.services.submit import submit_create
from tests.conftest import drive
from tests.s3 import S3Server, storages_for
from tests.views.test_create_video import image


def archived(video: Video) -> Video:
    drive(lambda: Video.objects.get(pk=video.pk).playable)
    return Video.objects.get(pk=video.pk)


def names(video: Video) -> dict[str, str]:
    return {v: str(getattr(video, f).name) for v, f in archive.FILE_FIELDS.items()}


def local_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_finished_video_is_verified_here_then_stored_as_three_objects(
    completed: Video, s3_archive: S3Server, media_root: Path, tmp_path: Path
) -> None:
    video = archived(completed)
    stored = names(video)
    folder = stored["video"].rsplit("/", 1)[0]
    assert folder.startswith(f"archive/{video.pk}/")
    objects = s3_archive.objects()
    assert set(objects) == set(stored.values())  # exactly the three, nothing else in the bucket
    for variant, name in stored.items():  # what is in the bucket passes the archiver's checks
        copy = tmp_path / f"copy-{variant}"
        copy.write_bytes(objects[name])
        assert media_check.check_file(variant, copy) is None
    head = s3_archive.head(stored["video"])
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] == len(
        objects[stored["video"]]
    )
    assert local_files(media_root) == []  # the verified temporaries are gone once uploaded


def test_a_large_video_is_uploaded_in_parts(
    completed: Video, s3_archive: S3Server, simulator
) -> None:
    simulator.configure(pad_video_mb=9)  # over the 8 MiB part size: a multipart upload
    video = archived(completed)
    head = s3_archive.head(names(video)["video"])
    assert head["ContentLength"] > 9 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-2")  # S3's mark of an object put in 2 parts


def test_an_upload_that_fails_leaves_no_object_and_no_file(
    completed: Video, s3_archive: S3Server, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_move, calls = archive._move, []

    def move(source: Path, name: str) -> None:
        calls.append(name)
        if len(calls) == 3:  # the video and the thumbnail are in the bucket already
            raise EndpointConnectionError(endpoint_url=s3_archive.endpoint)
        real_move(source, name)

    monkeypatch.setattr(archive, "_move", move)
    drive(lambda: len(calls) == 3)
    video = Video.objects.get(pk=completed.pk)
    assert video.asset_state == Video.Assets.PENDING and not video.video_file
    assert video.last_error == (
        "Could not store the spritesheet: the object storage could not be reached; will retry."
    )
    assert s3_archive.objects() == {}  # all three or none
    assert local_files(media_root) == []
    monkeypatch.setattr(archive, "_move", real_move)  # the bucket is back
    video = archived(video)
    assert set(s3_archive.objects()) == set(names(video).values())


def test_a_bucket_that_refuses_is_said_in_words_and_retried(
    completed: Video, s3_server: S3Server, settings, media_root: Path
) -> None:
    storages_for(settings, s3_server, bucket="no-such-bucket-here")
    drive(lambda: bool(Video.objects.get(pk=completed.pk).last_error))
    video = Video.objects.get(pk=completed.pk)
    assert video.asset_state == Video.Assets.PENDING and video.next_poll_at is not None
    assert video.last_error == (
        "Could not store the video file: the object storage answered NoSuchBucket; will retry."
    )
    assert local_files(media_root) == []


def test_deleting_a_video_removes_its_objects(
    completed: Video, s3_archive: S3Server, staff
) -> None:
    video = archived(completed)
    assert len(s3_archive.objects(f"archive/{video.pk}/")) == 3
    delete_video(video=video, user=staff)
    assert s3_archive.objects() == {}


def test_archive_again_replaces_the_objects_and_removes_the_old_ones(
    completed: Video, s3_archive: S3Server
) -> None:
    first = names(archived(completed))
    call_command("verify_archives", stdout=io.StringIO())  # all fine: nothing to do
    # A broken object in the bucket: verify_archives finds it, --fix fetches the files again.
    s3_archive.client().put_object(Bucket=s3_archive.bucket, Key=first["video"], Body=b"junk")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 archived video"):
        call_command("verify_archives", stdout=out)
    assert f"video #{completed.pk}" in out.getvalue() and "failed verification" in out.getvalue()
    call_command("verify_archives", "--fix", stdout=io.StringIO())
    again = names(archived(completed))
    assert set(s3_archive.objects()) == set(again.values())  # the old three are gone
    assert not set(again.values()) & set(first.values())
    out = io.StringIO()
    call_command("verify_archives", stdout=out)
    assert "1 fine, 0 broken" in out.getvalue()


def test_verify_archives_says_which_object_is_missing(
    completed: Video, s3_archive: S3Server, media_root: Path
) -> None:
    stored = names(archived(completed))
    s3_archive.client().delete_object(Bucket=s3_archive.bucket, Key=stored["thumbnail"])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_archives", stdout=out)
    assert f"the thumbnail is missing ({stored['thumbnail']})" in out.getvalue()
    assert local_files(media_root) == []  # the copies made for the checks are removed


def test_verify_archives_stops_when_the_bucket_cannot_be_read(
    completed: Video, s3_server: S3Server, s3_archive: S3Server, settings
) -> None:
    archived(completed)
    storages_for(settings, s3_server, bucket="no-such-bucket-here")
    with pytest.raises(CommandError, match="Could not read the archive's storage"):
        call_command("verify_archives", "--fix", stdout=io.StringIO())
    assert Video.objects.get(pk=completed.pk).asset_state == Video.Assets.ARCHIVED  # untouched


def test_a_reference_image_is_stored_in_the_bucket_and_sent_from_there(
    alice, provider, simulator, s3_archive: S3Server, django_capture_on_commit_callbacks
) -> None:
    upload = image(1280, 720, "PNG")
    with django_capture_on_commit_callbacks(execute=True):
        video = submit_create(
            user=alice, provider=provider, prompt="a first frame", model="sora-2",
            size="1280x720", seconds="4", key=uuid.uuid4(), input_reference=upload,
        )  # fmt: skip
    video.refresh_from_db()
    assert video.input_reference.name in s3_archive.objects("references/")
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    (sent,) = (simulator.data_dir / "references").iterdir()
    assert sent.read_bytes() == s3_archive.objects()[video.input_reference.name]
