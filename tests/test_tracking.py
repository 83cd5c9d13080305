"""The tracker (poll_due_videos) driven to completion against a fast simulator; archiving."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path

import av
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from jobs import services
from jobs.models import Video
from tests.conftest import drive


def remix(alice, completed, prompt: str = "make it noir") -> Video:  # type: ignore[no-untyped-def]
    return services.submit_remix(user=alice, source=completed, prompt=prompt, key=uuid.uuid4())


def test_a_remix_goes_to_completed_and_is_archived(alice, completed, simulator, media_root) -> None:
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).asset_state == Video.Assets.ARCHIVED)
    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED and video.progress == 100
    assert video.completed_at and video.expires_at and video.archived_at
    assert video.remixed_from_video_id == completed.video_id and video.next_poll_at is None
    with av.open(str(Path(media_root, video.video_file.name))) as container:
        stream = container.streams.video[0]
        assert f"{stream.codec_context.width}x{stream.codec_context.height}" == video.size
    assert Image.open(Path(media_root, video.thumbnail_file.name)).format == "WEBP"
    assert Image.open(Path(media_root, video.spritesheet_file.name)).format == "JPEG"
    assert not list(Path(media_root, ".partial").glob("*"))


def test_the_archived_file_plays_and_seeks_after_the_provider_expired_it(
    alice, alice_client, completed, simulator
) -> None:
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).asset_state == Video.Assets.ARCHIVED)
    video.refresh_from_db()
    simulator.expire(video.video_id)
    url = reverse("jobs:media", args=[video.video_file.name])
    full = alice_client.get(url)
    assert full.status_code == 200 and full["Accept-Ranges"] == "bytes"
    size = int(full["Content-Length"])
    part = alice_client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{size}"
    assert b"".join(part.streaming_content) == b"".join(full.streaming_content)[100:200]
    tail = alice_client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail["Content-Length"] == "10"
    assert alice_client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416


def test_media_is_not_served_outside_the_media_root(alice_client, media_root) -> None:
    Path(media_root).mkdir(parents=True, exist_ok=True)
    for path in ["../settings.py", "..%2F..%2Fpyproject.toml", ".partial/x.part"]:
        assert alice_client.get(f"/media/{path}").status_code == 404


def test_assets_that_expired_first_are_marked_plainly(alice, completed, simulator) -> None:
    video = remix(alice, completed)
    drive(
        lambda: (
            Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED
            or Video.objects.get(pk=video.pk).asset_state != Video.Assets.PENDING
        )
    )
    video.refresh_from_db()
    if video.asset_state == Video.Assets.PENDING:
        simulator.expire(video.video_id)
        drive(lambda: Video.objects.get(pk=video.pk).asset_state != Video.Assets.PENDING)
    else:  # archived already: prove the expired path on a fresh import instead
        remote = simulator.seed(1)[0]
        simulator.expire(remote["id"])
        video, _ = services.import_by_id(provider=completed.provider, video_id=remote["id"])
        drive(lambda: Video.objects.get(pk=video.pk).asset_state != Video.Assets.PENDING)
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.EXPIRED
    assert "expired" in video.get_asset_state_display().lower()
    assert not video.video_file


def test_a_partial_download_never_counts_as_archived(
    alice, completed, simulator, media_root
) -> None:
    remote = simulator.seed(1)[0]
    simulator.script_faults("drop", count=20, method="GET", path="/content")
    video, _ = services.import_by_id(provider=completed.provider, video_id=remote["id"])
    services.poll_due_videos()
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.PENDING and not video.video_file
    assert "Archiving failed" in video.last_error and video.next_poll_at > timezone.now()
    assert not list(Path(media_root, ".partial").glob("*"))
    simulator.reset()  # forget the scripted faults (and the job, so seed a fresh one)
    remote = simulator.seed(1)[0]
    Video.objects.filter(pk=video.pk).update(video_id=remote["id"], next_poll_at=timezone.now())
    drive(lambda: Video.objects.get(pk=video.pk).asset_state == Video.Assets.ARCHIVED)


def test_a_job_the_provider_forgot_is_marked_clearly(alice, completed, simulator) -> None:
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).submission == Video.Submission.SUBMITTED)
    simulator.reset()  # the provider loses everything
    Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())
    drive(lambda: Video.objects.get(pk=video.pk).is_final)
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and video.error_code == "not_found_at_provider"
    assert "no longer knows" in video.error_message


def test_failed_jobs_keep_the_providers_error(alice, completed, simulator) -> None:
    simulator.configure(fail_rate=1.0)
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).is_final)
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and video.error_code and video.error_message
    assert video.asset_state == Video.Assets.NONE and video.notify_pending


def test_rate_limits_back_off_as_asked(alice, completed, simulator) -> None:
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).submission == Video.Submission.SUBMITTED)
    simulator.configure(retry_after=60)  # longer than the client's cap: reschedule, don't sleep
    simulator.script_faults("429", count=1, method="GET", path="/v1/videos/")
    Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())
    services.poll_due_videos()
    video.refresh_from_db()
    assert video.next_poll_at - timezone.now() > timedelta(seconds=50)
    assert video.poll_errors == 1 and video.is_active


def test_claims_never_overlap(alice, completed) -> None:
    ids = [remix(alice, completed, prompt=f"p{i}").pk for i in range(4)]
    Video.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())
    first = services.claim_due(limit=3)
    second = services.claim_due(limit=10)
    assert not set(first) & set(second)
    assert services.claim_due(limit=10) == []


@pytest.mark.django_db(transaction=True)  # pool threads have their own connections
def test_the_tracker_command_runs_a_step(alice, completed, simulator) -> None:
    video = remix(alice, completed)
    out = StringIO()
    call_command("track_videos", "--once", "--threads", "2", stdout=out)
    assert "tracking videos with 2 threads" in out.getvalue()
    assert Video.objects.get(pk=video.pk).submission == Video.Submission.SUBMITTED


def test_stale_partial_downloads_are_removed(media_root) -> None:
    partial = Path(media_root, ".partial")
    partial.mkdir(parents=True)
    old = partial / "1-video-x.part"
    old.write_bytes(b"half")
    assert services.remove_stale_partials(older_than=-1) == 1
    assert not old.exists()
