"""Retry once: one retry per failed job ("Retried as #N"), also under a race; the prompt
editable before retrying; "retry all failed" for a batch; batch summaries that count each
job's latest attempt; a Retry button in the table row."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from jobs import lifecycle, selectors
from jobs.models import Batch, Budget, Video
from jobs.services import submit
from jobs.services.submit import retry_failed, retry_video, submit_batch, submit_remix


@pytest.fixture(autouse=True)
def no_worker(settings: Any) -> None:
    """Retries are decided when they are recorded; nothing here needs the provider."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def failed_remix(user: User, source: Video, prompt: str = "doomed") -> Video:
    video = submit_remix(user=user, source=source, prompt=prompt, key=uuid.uuid4())
    lifecycle.reject(video_id=video.pk, code="moderation_blocked", message="Blocked.")
    video.refresh_from_db()
    return video


def failed_batch(user: User, source: Video, prompts: list[str]) -> Batch:
    batch = submit_batch(user=user, source=source, prompts=prompts, key=uuid.uuid4())
    for video in batch.videos.all():
        lifecycle.reject(video_id=video.pk, code="moderation_blocked", message="Blocked.")
    return batch


class TestOnce:
    def test_a_second_retry_finds_the_first(self, alice: User, completed: Video) -> None:
        video = failed_remix(alice, completed)
        first = retry_video(user=alice, video=video, key=uuid.uuid4())
        again = retry_video(user=alice, video=video, key=uuid.uuid4())  # another tab
        assert again == first and Video.objects.filter(retry_of=video).count() == 1

    def test_staff_retrying_after_the_owner_finds_the_owners_retry(
        self, alice: User, staff: User, completed: Video
    ) -> None:
        video = failed_remix(alice, completed)
        first = retry_video(user=alice, video=video, key=uuid.uuid4())
        assert retry_video(user=staff, video=video, key=uuid.uuid4()) == first

    def test_a_race_ends_with_the_retry_that_won(
        self, alice: User, completed: Video, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another request's retry commits after this one looked and before it inserts: the
        constraint refuses the second row, and this call answers with the winner."""
        video = failed_remix(alice, completed)
        real = submit.estimate_cost
        won: list[Video] = []
        calls: list[int] = []

        def meanwhile(*args: Any) -> Decimal | None:
            calls.append(1)
            if len(calls) == 1:  # the other request, committing in between (autocommit)
                won.append(retry_video(user=alice, video=video, key=uuid.uuid4()))
            return real(*args)

        monkeypatch.setattr(submit, "estimate_cost", meanwhile)
        assert retry_video(user=alice, video=video, key=uuid.uuid4()) == won[0]
        assert Video.objects.filter(retry_of=video).count() == 1

    def test_the_button_becomes_retried_as(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        video = failed_remix(alice, completed)
        body = alice_client.get(video.get_absolute_url()).content.decode()
        assert "Retry as a new job" in body and "Retried as" not in body
        r = alice_client.post(
            f"/videos/{video.pk}/retry/", {"key": str(selectors.retry_key(video, 0))}
        )
        new = Video.objects.get(retry_of=video)
        assert r.status_code == 302 and r["Location"] == new.get_absolute_url()
        body = alice_client.get(video.get_absolute_url()).content.decode()
        assert f'href="/videos/{new.pk}/">Retried as #{new.pk}</a>' in body
        assert "Retry as a new job" not in body
        r = alice_client.post(f"/videos/{video.pk}/retry/", {"key": str(uuid.uuid4())})
        assert r.status_code == 302 and Video.objects.filter(retry_of=video).count() == 1
        page = alice_client.get(r["Location"]).content.decode()
        assert f"#{video.pk} was already retried as #{new.pk}." in page


class TestEditedPrompt:
    def test_the_form_is_pre_filled_and_the_edit_is_sent(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        video = failed_remix(alice, completed, "a prompt the moderation refused")
        r = alice_client.get(f"/videos/{video.pk}/retry/")
        assert r.status_code == 200 and "a prompt the moderation refused</textarea>" in (
            r.content.decode()
        )
        key = r.context["form"].initial["key"]
        r = alice_client.post(
            f"/videos/{video.pk}/retry/", {"key": str(key), "prompt": "a kinder prompt\r\n"}
        )
        new = Video.objects.get(retry_of=video)
        assert r.status_code == 302 and new.prompt == "a kinder prompt\n"  # via clean_prompt

    def test_an_empty_prompt_is_refused_in_words(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        video = failed_remix(alice, completed)
        r = alice_client.post(
            f"/videos/{video.pk}/retry/", {"key": str(uuid.uuid4()), "prompt": "   "}
        )
        assert r.status_code == 400 and b"Write a prompt: it cannot be empty." in r.content
        assert not Video.objects.filter(retry_of=video).exists()

    def test_only_the_owner_or_staff_sees_the_form(
        self, client: Client, alice: User, bob: User, completed: Video
    ) -> None:
        video = failed_remix(alice, completed)
        client.force_login(bob)
        assert client.get(f"/videos/{video.pk}/retry/").status_code == 403


class TestRetryAllFailed:
    def test_one_new_job_per_failed_member_without_a_retry(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        batch = failed_batch(alice, completed, ["a", "b", "c"])
        a, b, c = selectors.batch_videos(batch)
        retry_video(user=alice, video=a, key=uuid.uuid4())  # one already retried
        page = alice_client.get(batch.get_absolute_url())
        assert b"Retry all failed (2)</button>" in page.content
        key = page.context["retry_all_key"]
        r = alice_client.post(f"/batches/{batch.pk}/retry-failed/", {"key": str(key)})
        assert r.status_code == 302 and r["Location"] == batch.get_absolute_url()
        assert {v.retry_of_id for v in Video.objects.filter(retry_of__isnull=False)} == {
            a.pk,
            b.pk,
            c.pk,
        }
        assert Video.objects.filter(retry_of=a).count() == 1
        again = alice_client.post(f"/batches/{batch.pk}/retry-failed/", {"key": str(key)})
        assert again.status_code == 302 and Video.objects.count() == 1 + 3 + 3
        summary = selectors.summarise_batch(selectors.batch_videos(batch))
        assert (summary.total, summary.waiting, summary.failed, summary.retryable) == (3, 3, 0, 0)

    def test_all_or_nothing_with_the_budget(self, alice: User, completed: Video) -> None:
        batch = failed_batch(alice, completed, ["a", "b", "c"])
        unit = selectors.estimate_cost(
            completed.provider, completed.model, completed.size, completed.seconds
        )
        assert unit is not None
        Budget.objects.create(user=alice, monthly_limit=unit * 2)  # room for two of three
        with pytest.raises(ValidationError, match="retry of 3 failed jobs costs"):
            retry_failed(user=alice, batch=batch, key=uuid.uuid4())
        assert not Video.objects.filter(retry_of__isnull=False).exists()

    def test_nothing_to_retry_is_said_in_words(self, alice: User, completed: Video) -> None:
        batch = submit_batch(user=alice, source=completed, prompts=["ok"], key=uuid.uuid4())
        with pytest.raises(ValidationError, match="No failed job in this batch"):
            retry_failed(user=alice, batch=batch, key=uuid.uuid4())


class TestLatestAttempt:
    def test_a_retried_failure_counts_as_its_retry(self, alice: User, completed: Video) -> None:
        batch = failed_batch(alice, completed, ["a", "b"])
        assert selectors.summarise_batch(selectors.batch_videos(batch)).failed == 2
        for video in list(batch.videos.all()):
            new = retry_video(user=alice, video=video, key=uuid.uuid4())
            Video.objects.filter(pk=new.pk).update(
                status="completed", progress=100, submission="submitted", asset_state="archived"
            )
        summary = selectors.summarise_batch(selectors.batch_videos(batch))
        assert (summary.total, summary.completed, summary.failed) == (2, 2, 0)
        assert summary.progress == 100 and not summary.active
        assert summary.cost == 2 * completed.cost_estimate  # the failed attempts cost $0


class TestTableRow:
    def test_a_failed_row_has_a_retry_button_and_then_its_retry(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        video = failed_remix(alice, completed)
        body = alice_client.get("/").content.decode()
        assert f'action="/videos/{video.pk}/retry/"' in body
        r = alice_client.post(f"/videos/{video.pk}/retry/")  # the row's button sends no key
        assert r.status_code == 302
        twice = alice_client.post(f"/videos/{video.pk}/retry/")  # a double click
        assert twice.status_code == 302
        new = Video.objects.get(retry_of=video)
        body = alice_client.get("/").content.decode()
        assert f">Retried as #{new.pk}</a>" in body
        assert f'action="/videos/{video.pk}/retry/"' not in body
