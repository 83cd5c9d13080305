"""Performance figures that do not depend on the machine: queries, provider calls, bytes.

Timings are never asserted (they live in bench/, as ratios measured within one run, see
docs/performance.md); how many queries a poll runs, how many times the tracker asks the
provider about a job and how big an unchanged poll answer is are the same on every machine.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Provider, Video
from jobs.services.submit import submit_create
from jobs.tracker import claim_due
from tests.conftest import Simulator, drive

HX = {"HX-Request": "true"}
MAX_POLL_QUERIES = 6  # a tick with no version yet: the whole table
# A tick that sends its version (jobs/table_version.py): the session, the user, the key; and
# for a changed row, the changed rows. Rendering is skipped or limited to those rows.
UNCHANGED_POLL_QUERIES = 3
CHANGED_POLL_QUERIES = 4


@pytest.fixture
def offline_provider(db: Any) -> Provider:
    """The table and the claim never call the provider: nothing listens on port 9."""
    return Provider.objects.create(
        name="Offline", base_url="http://127.0.0.1:9/v1", api_key_env="SIMULATOR_API_KEY"
    )


def add_jobs(provider: Provider, owners: list[Any], count: int, *, active: bool) -> list[Video]:
    """Bulk rows, an hour old so "1 hour ago" cannot tick over between two requests."""
    at = timezone.now() - timedelta(hours=1)
    sources = list(Video.objects.filter(status="completed")[:5])
    rows = []
    for i in range(count):
        failed = not active and i % 7 == 0
        source = sources[i % len(sources)] if sources and i % 3 == 0 else None
        rows.append(
            Video(
                provider=provider,
                owner=owners[i % len(owners)] if i % 11 else None,  # some imported
                video_id=f"video_{uuid.uuid4().hex}",
                model="sora-2",
                status="in_progress" if active else ("failed" if failed else "completed"),
                progress=50 if active else (30 if failed else 100),
                prompt=f"job {i}: a red balloon over a market",
                size="720x1280",
                seconds="4",
                submission=Video.Submission.SUBMITTED,
                source=source,
                remixed_from_video_id=(source.video_id or "") if source else "",
                error_message="Blocked by moderation." if failed else "",
                asset_state=Video.Assets.PENDING
                if active
                else (Video.Assets.NONE if failed else Video.Assets.ARCHIVED),
                thumbnail_file="" if active or failed else f"archive/{i}/thumbnail.webp",
                video_file="" if active or failed else f"archive/{i}/video.mp4",
                requested_at=at + timedelta(seconds=i if active else -i),
            )
        )
    return Video.objects.bulk_create(rows)


def poll_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/?page=1", headers=HX)
    assert response.status_code == 200  # still polling: the newest jobs are in flight
    return len(ctx.captured_queries)


def test_the_table_poll_runs_the_same_few_queries_with_10_or_200_jobs(
    alice_client: Any, alice: Any, bob: Any, offline_provider: Provider
) -> None:
    add_jobs(offline_provider, [alice, bob], 10, active=True)
    few = poll_queries(alice_client)
    # 190 finished jobs behind them: remixes with a local source, failures, imports, files.
    add_jobs(offline_provider, [alice, bob], 190, active=False)
    add_jobs(offline_provider, [bob, alice], 20, active=False)  # now with sources to point at
    assert Video.objects.count() == 220
    many = poll_queries(alice_client)
    assert few == many, "the poll's query count grows with the number of jobs (an N+1?)"
    assert many <= MAX_POLL_QUERIES


def versioned_poll(client: Any, etag: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/?page=1&view=table", headers={**HX, "If-None-Match": etag})
    return len(ctx.captured_queries), response


def test_unchanged_and_changed_polls_cost_the_same_few_queries_with_10_or_200_jobs(
    alice_client: Any, alice: Any, bob: Any, offline_provider: Provider
) -> None:
    def figures() -> tuple[int, int, int, int]:
        whole = alice_client.get("/?page=1&view=table", headers=HX)
        unchanged, same = versioned_poll(alice_client, whole["ETag"])
        assert same.status_code == 304
        newest = Video.objects.order_by("-requested_at", "-pk").first()
        assert newest is not None
        Video.objects.filter(pk=newest.pk).update(progress=newest.progress + 1)
        changed, delta = versioned_poll(alice_client, same["ETag"])
        assert delta.status_code == 200 and delta["HX-Reswap"] == "none"
        return unchanged, changed, len(delta.content), len(whole.content)

    add_jobs(offline_provider, [alice, bob], 10, active=True)
    few = figures()
    add_jobs(offline_provider, [alice, bob], 190, active=False)
    many = figures()
    assert few[:2] == many[:2] == (UNCHANGED_POLL_QUERIES, CHANGED_POLL_QUERIES)
    # One changed row travels, not the table: a fraction of the whole answer's bytes.
    assert many[2] * 4 < many[3], many


def test_an_unchanged_poll_is_a_304_of_well_under_1_kb(
    alice_client: Any, alice: Any, offline_provider: Provider
) -> None:
    add_jobs(offline_provider, [alice], 25, active=True)
    first = alice_client.get("/?page=1", headers=HX)
    assert first.status_code == 200 and first.has_header("ETag")
    assert len(first.content) > 1024  # what revalidating saves on every tick
    # The browser keeps the answer but must ask again each tick, per kind of answer.
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    assert "HX-Request" in first["Vary"]

    again = alice_client.get("/?page=1", headers={**HX, "If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""
    cookies = sum(len(morsel.output()) + 2 for morsel in again.cookies.values())
    on_wire = len(b"HTTP/1.1 304 Not Modified\r\n") + len(again.serialize_headers()) + cookies
    assert on_wire + 4 <= 1024  # + the blank line that ends the headers


def test_a_changed_table_is_sent_again_not_a_304(
    alice_client: Any, alice: Any, offline_provider: Provider
) -> None:
    videos = add_jobs(offline_provider, [alice], 3, active=True)
    etag = alice_client.get("/?page=1", headers=HX)["ETag"]
    Video.objects.filter(pk=videos[0].pk).update(progress=75)
    again = alice_client.get("/?page=1", headers={**HX, "If-None-Match": etag})
    assert again.status_code == 200 and b'value="75"' in again.content


def test_claiming_due_work_costs_the_same_queries_for_10_or_300_due_jobs(
    alice: Any, offline_provider: Provider
) -> None:
    def claim_queries() -> tuple[int, int]:
        Video.objects.update(next_poll_at=timezone.now() - timedelta(seconds=1))
        with CaptureQueriesContext(connection) as ctx:
            claimed = claim_due(limit=50)
        return len(ctx.captured_queries), len(claimed)

    add_jobs(offline_provider, [alice], 10, active=True)
    few, claimed_few = claim_queries()
    add_jobs(offline_provider, [alice], 290, active=True)
    many, claimed_many = claim_queries()
    assert (claimed_few, claimed_many) == (10, 50)
    assert few == many <= 4


def test_a_short_job_costs_at_most_two_status_reads_and_one_download_per_file(
    alice: Any, provider: Provider, simulator: Simulator, settings: Any
) -> None:
    """A 4 s clip at speed 40 renders in ~0.5 s; with the production poll bounds the first
    status read is due 2 s after the submit (POLL_MIN_SECONDS x 2 while queued), so it finds
    the job finished. (The suite's 0.1 s minimum would honour the simulator's 25 ms hint.)"""
    settings.POLL_MIN_SECONDS, settings.POLL_MAX_SECONDS = 1.0, 30.0
    videos = [
        submit_create(
            user=alice,
            provider=provider,
            prompt=f"short {n}: a paper boat",
            model="sora-2",
            size="720x1280",
            seconds="4",
            key=uuid.uuid4(),
        )
        for n in range(3)
    ]
    ids = [v.pk for v in videos]
    drive(
        lambda: Video.objects.filter(pk__in=ids, asset_state=Video.Assets.ARCHIVED).count() == 3,
        timeout=30,
    )
    per_video = simulator.stats()["per_video"]
    for video in Video.objects.filter(pk__in=ids):
        counts = per_video[video.video_id]
        assert counts["retrieve"] <= 2, counts  # the naive 2 s loop would need 1-2 as well
        assert counts["content"] == 3, counts  # video, thumbnail, spritesheet: once each
