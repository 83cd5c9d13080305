"""The tracker (poll_due_videos) driven to completion against a fast simulator; archiving."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path

import av
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from pytest_django import Settings

from jobs.archive import remove_stale_partials
from jobs.lifecycle import next_poll_delay
from jobs.management.commands import track_videos
from jobs.models import Video
from jobs.provider.schema import RemoteVideo
from jobs.services.submit import submit_remix
from jobs.tracker import claim_due, release_claims
from tests.conftest import drive
from tests.helpers import import_by_id, poll_due_videos


def remix(alice: User, completed: Video, prompt: str = "make it noir") -> Video:
    return submit_remix(user=alice, source=completed, prompt=prompt, key=uuid.uuid4())


def test_a_remix_goes_to_completed_and_is_archived(alice, completed, simulator, media_root) -> None:
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).asset_state == Video.Assets.ARCHIVED)
    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED and video.progress == 100
    assert video.completed_at and video.expires_at and video.archived_at
    assert video.remixed_from_video_id == completed.video_id and video.next_poll_at is None
    assert video.video_file.name and video.thumbnail_file.name and video.spritesheet_file.name
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
        video, _ = import_by_id(provider=completed.provider, video_id=remote["id"])
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
    video, _ = import_by_id(provider=completed.provider, video_id=remote["id"])
    poll_due_videos()
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.PENDING and not video.video_file
    assert video.next_poll_at is not None
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
    poll_due_videos()
    video.refresh_from_db()
    assert video.next_poll_at is not None
    assert video.next_poll_at - timezone.now() > timedelta(seconds=50)
    assert video.poll_errors == 1 and video.is_active


def test_claims_never_overlap(alice, completed) -> None:
    ids = [remix(alice, completed, prompt=f"p{i}").pk for i in range(4)]
    Video.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())
    first = claim_due(limit=3)
    second = claim_due(limit=10)
    assert not set(first) & set(second)
    assert claim_due(limit=10) == []


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
    assert remove_stale_partials(older_than=-1) == 1
    assert not old.exists()


def track_until(
    done: Callable[[], bool], *, threads: int, before_stop: Callable[[], None] | None = None
) -> tuple[float | None, str]:
    """Run the real `track_videos` loop here (it sets signal handlers, so it needs the main
    thread) while a second thread waits up to 20 s for `done()` and then stops the loop, as
    SIGTERM would. Returns the seconds `done()` took (None if it never held) and the output."""
    command = track_videos.Command(stdout=StringIO())
    took: list[float] = []

    def watch() -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if done():
                    took.append(time.monotonic() - started)
                    break
                time.sleep(0.05)
        finally:
            if before_stop is not None:
                before_stop()
            command.stopping = True
            connection.close()

    started = time.monotonic()
    watcher = threading.Thread(target=watch)
    watcher.start()
    call_command(command, "--threads", str(threads))
    watcher.join()
    return (took[0] if took else None), command.stdout.getvalue()


@pytest.mark.django_db(transaction=True)  # the command's pool threads use their own connections
def test_a_stalled_status_read_does_not_hold_up_the_others(alice, completed, simulator) -> None:
    hang = 5.0
    simulator.configure(hang_seconds=hang)
    videos = [remix(alice, completed, prompt=f"take {n}") for n in range(4)]
    drive(
        lambda: all(v.submission == "submitted" for v in Video.objects.filter(pk__in=ids(videos)))
    )
    stalled, *others = Video.objects.filter(pk__in=ids(videos)).order_by("pk")
    simulator.script_faults("timeout", method="GET", path=f"/v1/videos/{stalled.video_id}")
    stalled_status: list[str] = []

    def others_archived() -> bool:
        rows = Video.objects.filter(pk__in=ids(others))
        if all(v.asset_state == Video.Assets.ARCHIVED for v in rows):
            stalled_status.append(Video.objects.get(pk=stalled.pk).status)
            return True
        return False

    after, output = track_until(others_archived, threads=4)
    # Three jobs were refreshed to completion and archived while the fourth's read hung.
    assert after is not None and after < hang, after
    assert stalled_status != [Video.Status.COMPLETED]
    assert "tracker stopped" in output


def ids(videos: list[Video]) -> list[int]:
    return [v.pk for v in videos]


def test_downloads_are_claimed_apart_from_status_reads(alice, completed) -> None:
    running = remix(alice, completed, prompt="still rendering")
    Video.objects.filter(pk=running.pk).update(
        submission="submitted", video_id="video_r", status="in_progress"
    )
    done = remix(alice, completed, prompt="finished")
    Video.objects.filter(pk=done.pk).update(
        submission="submitted", video_id="video_d", status="completed", progress=100
    )
    both = [running.pk, done.pk]
    Video.objects.filter(pk__in=both).update(next_poll_at=timezone.now())
    assert claim_due(limit=10, ids=both, archives=True) == [done.pk]
    assert claim_due(limit=10, ids=both, archives=False) == [running.pk]


def test_a_stopping_tracker_hands_back_what_it_never_started(alice, completed) -> None:
    video = remix(alice, completed)
    Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())
    mine = [video.pk]
    assert claim_due(limit=5, ids=mine) == mine
    assert claim_due(limit=5, ids=mine) == []  # leased: nobody else may take it
    release_claims(ids=mine)
    assert claim_due(limit=5, ids=mine) == mine  # due again now, not after the lease


def test_the_tracker_needs_two_threads() -> None:
    with pytest.raises(CommandError, match="at least 2"):
        call_command("track_videos", "--once", "--threads", "1")


class TestPollDelay:
    """The adaptive interval: from the progress since the previous read, never sooner than
    the provider asks, and only a slow fallback when webhooks say when a job is done."""

    @pytest.fixture(autouse=True)
    def wide_bounds(self, settings: Settings) -> None:
        settings.POLL_MIN_SECONDS, settings.POLL_MAX_SECONDS = 1.0, 60.0
        settings.POLL_WEBHOOK_SECONDS = 300.0

    def delay(
        self, video: Video, progress: int, *, old: int, ago: float, poll_after: float | None = None
    ) -> float:
        remote = RemoteVideo(
            id="video_x", status="in_progress", progress=progress, poll_after=poll_after
        )
        return next_poll_delay(
            video,
            remote,
            old_status="in_progress",
            old_progress=old,
            previous=timezone.now() - timedelta(seconds=ago),
        )

    def test_it_aims_at_the_predicted_finish(self, completed) -> None:
        # 20 points in 10 s: 60 points (30 s) to go; a long wait is re-checked at 3/4 of it.
        assert self.delay(completed, 40, old=20, ago=10) == pytest.approx(22.5, abs=0.1)
        # 5 points in 1 s, 5 to go: just past the finish.
        assert self.delay(completed, 95, old=90, ago=1) == pytest.approx(1.2, abs=0.05)

    def test_the_time_spent_queued_does_not_count_as_rendering(self, completed) -> None:
        # The first in-progress read has no rate yet: look again soon, not "100 % in 30 s".
        remote = RemoteVideo(id="video_x", status="in_progress", progress=10)
        delay = next_poll_delay(
            completed, remote, old_status="queued", old_progress=0, previous=timezone.now()
        )
        assert delay == 2.0

    def test_the_providers_hint_is_a_floor(self, completed) -> None:
        assert self.delay(completed, 95, old=90, ago=1, poll_after=10.0) == 10.0

    def test_webhooks_make_polling_a_slow_fallback(self, completed) -> None:
        completed.provider.webhooks_enabled = True
        assert self.delay(completed, 40, old=20, ago=10) == 300.0


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_slow_downloads_leaves_threads_for_status_reads(
    alice, completed, simulator
) -> None:
    hang = 5.0
    simulator.configure(hang_seconds=hang)
    finished = [remix(alice, completed, prompt=f"finished {n}") for n in range(3)]
    drive(lambda: all(v.status == "completed" for v in Video.objects.filter(pk__in=ids(finished))))
    # Their files are still to be copied, and every download now hangs.
    Video.objects.filter(pk__in=ids(finished)).update(
        asset_state=Video.Assets.PENDING, next_poll_at=timezone.now()
    )
    simulator.script_faults("timeout", count=50, method="GET", path="/content")
    running = remix(alice, completed, prompt="still rendering")
    after, _ = track_until(
        lambda: Video.objects.get(pk=running.pk).status == Video.Status.COMPLETED,
        threads=4,  # 3 may download, 1 is kept for the rest
        before_stop=lambda: simulator.control("DELETE", "faults"),  # downloads in hand end soon
    )
    assert after is not None and after < hang, after
