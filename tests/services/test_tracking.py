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
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from pytest_django import Settings

from jobs.archive import remove_stale_partials
from jobs.lifecycle import next_poll_delay
from jobs.management.commands import track_videos
from jobs.models import Provider, Video
from jobs.provider.schema import RemoteVideo
from jobs.services.submit import submit_remix
from jobs.tracker import claim_due, claim_work, process_claimed, release_claims
from tests.conftest import Simulator, drive
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
    with pytest.raises(CommandError, match="at least 1"):
        call_command("track_videos", "--once", "--download-threads", "0")


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
        # 20 points in 10 s: 60 points (30 s) to go, known to 1/20 (1.5 s): one read on the way,
        # before the earliest finish (27 s), makes the rate sure.
        assert self.delay(completed, 40, old=20, ago=10) == pytest.approx(27.0, abs=0.1)
        # 5 points in 1 s, 5 to go: just past the latest finish the rate allows.
        assert self.delay(completed, 95, old=90, ago=1) == pytest.approx(1.25, abs=0.05)
        # 80 points in 40 s, 10 to go (5 s, known to 0.06 s): straight past the finish.
        assert self.delay(completed, 90, old=10, ago=40) == pytest.approx(5.11, abs=0.02)

    def test_the_time_spent_queued_does_not_count_as_rendering(self, completed) -> None:
        # The first in-progress read has no rate yet: look again soon, not "100 % in 30 s".
        remote = RemoteVideo(id="video_x", status="in_progress", progress=10)
        delay = next_poll_delay(
            completed, remote, old_status="queued", old_progress=0, previous=timezone.now()
        )
        assert delay == 2.0

    def test_the_providers_hint_is_a_floor_on_the_way(self, completed) -> None:
        assert self.delay(completed, 40, old=20, ago=10, poll_after=10.0) == pytest.approx(
            27, abs=0.1
        )
        assert self.delay(completed, 50, old=50, ago=5, poll_after=10.0) == 10.0  # not moving
        # A read on the way would come after the earliest finish: aim at the finish instead.
        assert self.delay(completed, 40, old=20, ago=10, poll_after=29.0) == pytest.approx(
            31.55, abs=0.05
        )

    def test_the_read_aimed_at_the_finish_is_not_held_back_by_the_hint(self, completed) -> None:
        # Done in about a second, the provider says "come back in 10 s": a read at 99 % and the
        # next one 10 s later would leave the finished job unseen for 9 s.
        assert self.delay(completed, 95, old=90, ago=1, poll_after=10.0) == pytest.approx(
            1.25, abs=0.05
        )

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
        threads=4,  # downloads have threads of their own: these 4 are for the rest
        before_stop=lambda: simulator.control("DELETE", "faults"),  # downloads in hand end soon
    )
    assert after is not None and after < hang, after


@pytest.fixture
def rendering(alice: User, completed: Video, simulator: Simulator) -> Video:
    """A remix the provider is still working on (a thousand times slower), sent and read."""
    simulator.configure(slow_rate=1, slow_factor=1000)
    video = remix(alice, completed)
    drive(lambda: Video.objects.get(pk=video.pk).submission == Video.Submission.SUBMITTED)
    return Video.objects.get(pk=video.pk)


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The SQL run, without the savepoints the test's own transaction adds."""
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_status_read_is_one_get_and_two_queries(rendering: Video, simulator: Simulator) -> None:
    Video.objects.filter(pk=rendering.pk).update(next_poll_at=timezone.now())
    [claim] = claim_work(limit=5)
    assert (claim.pk, claim.video_id, claim.reads_status) == (
        rendering.pk,
        rendering.video_id,
        True,
    )
    assert claim.provider.pk == rendering.provider_id  # the claim brings it: no query later
    reads = retrieves(simulator, rendering.video_id or "")
    with CaptureQueriesContext(connection) as queries:
        process_claimed(video_id=claim.pk, claim=claim)
    assert retrieves(simulator, rendering.video_id or "") == reads + 1
    # The row, locked, and an UPDATE of what changed: nothing about it changed but when it
    # was read and when it is next due, so the row's updated_at (what pages key on) stays.
    select, update = statements(queries)
    assert select.startswith("SELECT") and update.startswith("UPDATE")
    assert "last_polled_at" in update and "next_poll_at" in update
    assert "prompt" not in update and "updated_at" not in update
    after = Video.objects.get(pk=rendering.pk)
    assert after.updated_at == rendering.updated_at and after.last_polled_at is not None
    assert after.next_poll_at is not None and after.next_poll_at > timezone.now()


def test_a_change_the_provider_reports_is_written_and_dated(
    rendering: Video, simulator: Simulator
) -> None:
    Video.objects.filter(pk=rendering.pk).update(next_poll_at=timezone.now(), model="old-name")
    poll_due_videos()
    after = Video.objects.get(pk=rendering.pk)
    assert after.model == "sora-2" and after.updated_at > rendering.updated_at


def test_claims_say_which_rows_are_status_reads(
    alice: User, completed: Video, rendering: Video
) -> None:
    waiting = remix(alice, completed, prompt="not sent yet")
    Video.objects.filter(pk__in=[waiting.pk, rendering.pk]).update(next_poll_at=timezone.now())
    claims = {claim.pk: claim.reads_status for claim in claim_work(limit=5)}
    assert claims == {rendering.pk: True, waiting.pk: False}


def retrieves(simulator: Simulator, video_id: str) -> int:
    return int(simulator.stats()["per_video"].get(video_id, {}).get("retrieve", 0))


def due_rows(provider: Provider, count: int) -> None:
    Video.objects.bulk_create(
        Video(
            provider=provider,
            video_id=f"video_due_{uuid.uuid4().hex}",
            status=Video.Status.IN_PROGRESS,
            submission=Video.Submission.SUBMITTED,
            prompt="due",
            next_poll_at=timezone.now(),
        )
        for _ in range(count)
    )


def test_read_threads_are_sized_by_littles_law(completed: Video) -> None:
    sizer = track_videos.Sizer(low=4, high=64)
    for _ in range(10):
        sizer.record(0.3)  # each read held its thread 300 ms
    now = time.monotonic()
    due_rows(completed.provider, 40)  # due within the 2 s horizon: 20 a second
    assert sizer.adjust(now) == 9  # 20/s × 0.3 s × 1.5, rounded up
    due_rows(completed.provider, 160)
    assert sizer.adjust(now + 1) == 45  # 100/s: the threads grow at once
    due_rows(completed.provider, 400)
    assert sizer.adjust(now + 2) == 64  # never past the bound
    Video.objects.filter(video_id__startswith="video_due_").delete()
    assert sizer.adjust(now + 3) == 57  # a lull: they shrink slowly, by a tenth at a time
    assert sizer.adjust(now + 3.1) == 57  # at most twice a second
    for step in range(4, 40):
        sizer.adjust(now + step)
    assert sizer.cap == 4  # and end at the floor
