"""Batch remix: several prompts (or N variations) as separate jobs, a progress page, retries."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from jobs import selectors
from jobs.lib.prompts import batch_prompts
from jobs.models import Batch, Video
from jobs.services.submit import (
    batch_job_key,
    retry_video,
    submit_batch,
    submit_create,
    submit_remix,
)
from tests.conftest import drive

if TYPE_CHECKING:  # the stubs' name for what the test client returns
    from django.test.client import _MonkeyPatchedWSGIResponse as HttpResponse

HX = {"HX-Request": "true"}
THREE = "in sepia\nas a watercolour\n\n  at night  \n"


def post(
    client: Client, source: Video, prompts: str = THREE, variations: int = 1, key: str = ""
) -> HttpResponse:
    return client.post(
        f"/videos/{source.pk}/batch/",
        {"prompts": prompts, "variations": variations, "key": key or str(uuid.uuid4())},
    )


class TestPrompts:
    def test_one_job_per_non_blank_line(self) -> None:
        assert batch_prompts(THREE) == ["in sepia", "as a watercolour", "at night"]

    def test_variations_append_a_suffix(self) -> None:
        assert batch_prompts("a fox\na hen", 2) == [
            "a fox (variation 1 of 2)",
            "a fox (variation 2 of 2)",
            "a hen (variation 1 of 2)",
            "a hen (variation 2 of 2)",
        ]

    def test_job_keys_are_derived_from_the_form_key(self) -> None:
        key = uuid.uuid4()
        assert batch_job_key(key, 0) == uuid.uuid5(key, "0")
        assert batch_job_key(key, 0) != batch_job_key(key, 1)


class TestSubmit:
    def test_the_form_shows_the_source_and_a_cost_estimate(self, alice_client, completed) -> None:
        r = alice_client.get(f"/videos/{completed.pk}/batch/")
        body = r.content.decode()
        unit = 0.10 * int(completed.seconds)  # sora-2 (as seeded) list price: $0.10 a second
        assert r.status_code == 200 and f"${unit:.2f} per job" in body
        assert f'data-unit="{unit:.4f}"' in body  # read by static/js/create.js
        assert "variation k of N" in body and "js/create." in body

    def test_three_prompts_become_three_jobs_in_one_batch(
        self, alice_client, alice, completed, simulator, django_capture_on_commit_callbacks
    ) -> None:
        key = str(uuid.uuid4())
        with django_capture_on_commit_callbacks(execute=True):
            r = post(alice_client, completed, key=key)
        batch = Batch.objects.get()
        assert r.status_code == 302 and r["Location"] == f"/batches/{batch.pk}/"
        videos = list(batch.videos.order_by("requested_at", "pk"))
        assert [v.prompt for v in videos] == ["in sepia", "as a watercolour", "at night"]
        assert [v.idempotency_key for v in videos] == [
            uuid.uuid5(uuid.UUID(key), str(i)) for i in range(3)
        ]
        assert all(v.source == completed and v.owner == alice for v in videos)
        drive(lambda: all(v.is_final for v in Video.objects.filter(batch=batch)))
        assert simulator.stats()["jobs_created"] == 3
        page = alice_client.get(f"/batches/{batch.pk}/").content.decode()
        cost = 3 * 0.10 * int(completed.seconds)
        assert "3 of 3 completed" in page and f"charged ${cost:.2f}" in page

    def test_a_double_submit_makes_one_batch(self, alice_client, completed, simulator) -> None:
        key = str(uuid.uuid4())
        post(alice_client, completed, key=key)
        post(alice_client, completed, key=key)
        assert Batch.objects.count() == 1 and Video.objects.filter(batch__isnull=False).count() == 3

    def test_variations(self, alice_client, completed) -> None:
        post(alice_client, completed, prompts="a storm", variations=3)
        prompts = sorted(Video.objects.filter(batch__isnull=False).values_list("prompt", flat=True))
        assert prompts == [f"a storm (variation {k} of 3)" for k in (1, 2, 3)]

    def test_one_bad_line_refuses_the_whole_batch(self, alice_client, completed) -> None:
        r = post(alice_client, completed, prompts="fine\n" + "x" * 32_001)
        assert r.status_code == 400 and b"Prompt 2: The prompt is 32,001 characters" in r.content
        assert Batch.objects.count() == 0 and Video.objects.count() == 1

    def test_too_many_jobs_are_refused(self, alice_client, completed) -> None:
        r = post(alice_client, completed, prompts="a\nb\nc", variations=7)
        assert r.status_code == 400 and b"That is 21 jobs; a batch holds at most 20" in r.content

    def test_someone_elses_batch_key_is_refused(self, alice, bob, completed) -> None:
        key = uuid.uuid4()
        submit_batch(user=alice, source=completed, prompts=["p"], key=key)
        with pytest.raises(PermissionDenied):
            submit_batch(user=bob, source=completed, prompts=["p"], key=key)


class TestProgressPage:
    def test_an_unconfirmed_job_is_counted_in_words(self, alice_client, alice, completed) -> None:
        batch = submit_batch(user=alice, source=completed, prompts=["a", "b"], key=uuid.uuid4())
        first = batch.videos.order_by("pk").first()
        assert first is not None
        Video.objects.filter(pk=first.pk).update(
            submission=Video.Submission.UNCONFIRMED, next_poll_at=None
        )
        r = alice_client.get(f"/batches/{batch.pk}/")
        assert r.status_code == 200
        assert b"1 could not be confirmed" in r.content and b"1 waiting to submit" in r.content

    def test_it_polls_while_active_and_stops_when_final(
        self, alice_client, alice, completed
    ) -> None:
        batch = submit_batch(user=alice, source=completed, prompts=["a", "b"], key=uuid.uuid4())
        r = alice_client.get(f"/batches/{batch.pk}/")
        assert b"data-poll" in r.content and b"0 of 2 completed" in r.content
        assert b"2 waiting to submit" in r.content
        r = alice_client.get(f"/batches/{batch.pk}/", headers=HX)
        assert r.status_code == 200 and b"<html" not in r.content
        drive(lambda: all(v.is_final for v in batch.videos.all()))
        assert alice_client.get(f"/batches/{batch.pk}/", headers=HX).status_code == 200
        drive(lambda: all(v.playable for v in batch.videos.all()))  # archived: nothing left to do
        r = alice_client.get(f"/batches/{batch.pk}/", headers=HX)
        assert r.status_code == 200 and b"data-poll" not in r.content
        assert b"2 of 2 completed" in r.content
        ids = ",".join(str(v.pk) for v in selectors.batch_videos(batch))
        assert f'href="/compare/?ids={ids}">Compare the finished ones'.encode() in r.content

    def test_the_summary_counts(self, alice, completed) -> None:
        batch = submit_batch(
            user=alice, source=completed, prompts=["a", "b", "c"], key=uuid.uuid4()
        )
        a, b, c = selectors.batch_videos(batch)
        Video.objects.filter(pk=a.pk).update(
            status="completed", progress=100, submission="submitted"
        )
        Video.objects.filter(pk=b.pk).update(
            status="in_progress", progress=50, submission="submitted"
        )
        Video.objects.filter(pk=c.pk).update(status="failed", submission="submitted")
        summary = selectors.summarise_batch(selectors.batch_videos(batch))
        assert (summary.completed, summary.running, summary.failed, summary.waiting) == (1, 1, 1, 0)
        assert summary.progress == 50 and summary.active
        assert summary.cost == 2 * a.cost_estimate  # the failed one costs nothing


class TestRetry:
    def test_a_failed_job_is_retried_once_as_a_new_job(
        self, alice_client, alice, completed, simulator, django_capture_on_commit_callbacks
    ) -> None:
        simulator.configure(fail_rate=1)
        with django_capture_on_commit_callbacks(execute=True):
            post(alice_client, completed, prompts="doomed\nalso doomed")
        batch = Batch.objects.get()
        drive(lambda: all(v.is_final for v in batch.videos.all()))
        page = alice_client.get(f"/batches/{batch.pk}/").content.decode()
        assert "2 failed" in page and page.count(">Retry</button>") == 2
        failed = selectors.batch_videos(batch)[0]
        assert f'value="{failed.retry_key}"' in page  # type: ignore[attr-defined]  # set by batch_videos

        simulator.configure(fail_rate=0)
        data = {"key": str(failed.retry_key)}  # type: ignore[attr-defined]  # set by batch_videos
        with django_capture_on_commit_callbacks(execute=True):
            first = alice_client.post(f"/videos/{failed.pk}/retry/", data)
            again = alice_client.post(f"/videos/{failed.pk}/retry/", data)  # a double click
        assert first.status_code == again.status_code == 302
        assert first["Location"] == f"/batches/{batch.pk}/"
        retry = Video.objects.get(retry_of=failed)
        assert (retry.prompt, retry.source, retry.batch, retry.owner) == (
            "doomed",
            completed,
            batch,
            alice,
        )
        assert retry.idempotency_key != failed.idempotency_key
        drive(lambda: Video.objects.get(pk=retry.pk).status == Video.Status.COMPLETED)
        assert simulator.stats()["jobs_created"] == 3  # two failed, one retry
        # Once per failed job: the row now links to its retry instead of offering another.
        page = alice_client.get(f"/batches/{batch.pk}/").content.decode()
        assert f">Retried as #{retry.pk}</a>" in page and page.count(">Retry</button>") == 1

    def test_a_created_video_is_retried_with_its_reference_image(
        self, alice, provider, simulator, django_capture_on_commit_callbacks
    ) -> None:
        from tests.views.test_create_video import image

        simulator.configure(fail_rate=1)
        with django_capture_on_commit_callbacks(execute=True):
            video = submit_create(
                user=alice, provider=provider, prompt="with a first frame", model="sora-2",
                size="1280x720", seconds="4", key=uuid.uuid4(), input_reference=image(1280, 720),
            )  # fmt: skip
        drive(lambda: Video.objects.get(pk=video.pk).is_final)
        video.refresh_from_db()
        simulator.configure(fail_rate=0)
        with django_capture_on_commit_callbacks(execute=True):
            retry = retry_video(user=alice, video=video, key=uuid.uuid4())
        assert retry.input_reference and retry.input_reference.name != video.input_reference.name
        with retry.input_reference.open("rb") as new, video.input_reference.open("rb") as old:
            assert new.read() == old.read()
        assert not retry.is_derived and retry.cost_estimate == video.cost_estimate
        drive(lambda: Video.objects.get(pk=retry.pk).status == Video.Status.COMPLETED)

    def test_only_failed_jobs_and_only_their_owner(self, alice, bob, completed) -> None:
        Video.objects.filter(pk=completed.pk).update(owner=alice)
        completed.refresh_from_db()
        with pytest.raises(ValidationError, match="Only a failed job"):
            retry_video(user=alice, video=completed, key=uuid.uuid4())
        video = submit_remix(user=alice, source=completed, prompt="p", key=uuid.uuid4())
        Video.objects.filter(pk=video.pk).update(status="failed", submission="rejected")
        video.refresh_from_db()
        with pytest.raises(PermissionDenied):
            retry_video(user=bob, video=video, key=uuid.uuid4())

    def test_a_key_used_for_another_job_is_refused(self, alice, completed) -> None:
        video = submit_remix(user=alice, source=completed, prompt="p", key=uuid.uuid4())
        Video.objects.filter(pk=video.pk).update(status="failed", submission="rejected")
        video.refresh_from_db()
        other = submit_remix(user=alice, source=completed, prompt="q", key=uuid.uuid4())
        with pytest.raises(ValidationError, match="already used"):
            retry_video(user=alice, video=video, key=other.idempotency_key)

    def test_the_detail_page_offers_retry_for_a_failed_job(
        self, alice_client, alice, completed
    ) -> None:
        video = submit_remix(user=alice, source=completed, prompt="p", key=uuid.uuid4())
        Video.objects.filter(pk=video.pk).update(status="failed", submission="rejected")
        body = alice_client.get(video.get_absolute_url()).content.decode()
        assert f'action="/videos/{video.pk}/retry/"' in body and "Retry as a new job" in body
