"""Toasts and the running count on every page, polled only while something runs; e-mail."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from jobs.lifecycle import reject
from jobs.models import Provider, Video
from jobs.services.submit import submit_create, submit_remix
from tests.conftest import drive
from tests.helpers import import_by_id

HX = {"HX-Request": "true"}


def job(provider: Provider, owner: User | None, status: str = "in_progress", **kw: Any) -> Video:
    return Video.objects.create(
        provider=provider,
        owner=owner,
        video_id=f"video_{uuid.uuid4().hex}",
        status=status,
        submission=Video.Submission.SUBMITTED,
        prompt=kw.pop("prompt", "a running job"),
        model="sora-2",
        size="720x1280",
        seconds="4",
        **kw,
    )


class TestNoticesPartial:
    def test_it_carries_my_running_count_and_polls_only_while_it_is_positive(
        self, alice_client, alice, bob, provider
    ) -> None:
        job(provider, alice)
        job(provider, bob)  # someone else's: not mine to count
        r = alice_client.get("/notifications/", headers=HX)
        assert r.status_code == 200 and b"<html" not in r.content
        assert b'id="notices"' in r.content and b'data-running="1"' in r.content
        assert b"data-notify" in r.content and b'hx-get="/notifications/"' in r.content
        Video.objects.filter(owner=alice).update(status="completed", progress=100)
        r = alice_client.get("/notifications/", headers=HX)
        assert b'data-running="0"' in r.content
        assert b"data-notify" not in r.content and b"hx-get" not in r.content  # polling ends

    def test_a_finished_job_is_toasted_once(self, alice_client, alice, provider) -> None:
        job(provider, alice, status="failed", prompt="doomed", notify_pending=True,
            error_message="moderation_blocked")  # fmt: skip
        first = alice_client.get("/notifications/", headers=HX).content.decode()
        assert 'data-toast="' in first and 'data-level="error"' in first
        assert "“doomed” failed: moderation_blocked" in first
        assert "data-toast" not in alice_client.get("/notifications/", headers=HX).content.decode()

    @pytest.mark.parametrize("url", ["/usage/", "/import/", "/videos/new/"])
    def test_every_page_carries_the_notices_and_the_title_count(
        self, alice_client, alice, provider, url: str
    ) -> None:
        job(provider, alice)
        job(provider, alice, status="completed", prompt="just done", notify_pending=True)
        body = alice_client.get(url).content.decode()
        assert 'id="notices"' in body and 'data-running="1"' in body and "data-notify" in body
        assert "“just done” completed" in body
        assert "js/notify." in body  # static JS: the CSP allows no inline script

    def test_an_idle_page_has_nothing_to_poll(self, alice_client, alice, provider) -> None:
        job(provider, alice, status="completed")
        body = alice_client.get("/usage/").content.decode()
        assert 'data-running="0"' in body
        assert "data-notify" not in body and "data-poll " not in body and "hx-get" not in body

    def test_the_login_page_does_not_poll(self, client, db) -> None:
        body = client.get("/login/").content.decode()
        assert "data-notify" not in body

    def test_it_needs_a_login(self, client, db) -> None:
        r = client.get("/notifications/")
        assert r.status_code == 302 and r["Location"].startswith("/login/")


class TestEmail:
    @pytest.fixture(autouse=True)
    def mail_on(self, settings: Settings) -> None:
        settings.NOTIFY_BY_EMAIL = True
        # drive() does the tracker's work; an immediate queue would also archive every clip.
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}

    def submit(
        self,
        user: User,
        source: Video,
        django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    ) -> Video:
        # The e-mail goes out on commit, so the tracker steps run inside the capture too.
        with django_capture_on_commit_callbacks(execute=True):
            video = submit_remix(
                user=user, source=source, prompt="make it\nsepia", key=uuid.uuid4()
            )
            drive(lambda: Video.objects.get(pk=video.pk).is_final)
        return video

    def test_the_owner_hears_when_a_job_completes(
        self, alice, completed, settings, django_capture_on_commit_callbacks
    ) -> None:
        alice.email = "alice@example.com"
        alice.save()
        video = self.submit(alice, completed, django_capture_on_commit_callbacks)
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["alice@example.com"]
        assert message.subject == f"Video #{video.pk} is ready: make it sepia"
        assert f"{settings.SITE_URL}/videos/{video.pk}/" in message.body

    def test_a_failure_says_why(
        self, alice, completed, simulator, django_capture_on_commit_callbacks
    ) -> None:
        alice.email = "alice@example.com"
        alice.save()
        simulator.configure(fail_rate=1)
        video = self.submit(alice, completed, django_capture_on_commit_callbacks)
        video.refresh_from_db()
        assert [m.subject for m in mail.outbox] == [f"Video #{video.pk} failed: make it sepia"]
        assert f"Reason: {video.error_message}" in mail.outbox[0].body

    def test_a_rejected_submission_is_reported(
        self, alice, completed, simulator, django_capture_on_commit_callbacks
    ) -> None:
        alice.email = "alice@example.com"
        alice.save()
        with django_capture_on_commit_callbacks(execute=True):
            video = submit_create(
                user=alice, provider=completed.provider, prompt="p", model="sora-2",
                size="1280x720", seconds="4", key=uuid.uuid4(),
            )  # fmt: skip
            reject(video_id=video.pk, code="moderation_blocked", message="Blocked.")
        assert [m.subject for m in mail.outbox] == [f"Video #{video.pk} failed: p"]

    def test_nothing_without_an_address_or_with_the_setting_off(
        self, alice, completed, settings, django_capture_on_commit_callbacks
    ) -> None:
        self.submit(alice, completed, django_capture_on_commit_callbacks)  # no e-mail address
        alice.email = "alice@example.com"
        alice.save()
        settings.NOTIFY_BY_EMAIL = False
        self.submit(alice, completed, django_capture_on_commit_callbacks)
        assert mail.outbox == []

    def test_imported_jobs_have_nobody_to_tell(
        self, provider, simulator, django_capture_on_commit_callbacks
    ) -> None:
        remote = simulator.seed(1)[0]
        with django_capture_on_commit_callbacks(execute=True):
            import_by_id(provider=provider, video_id=remote["id"])
        assert mail.outbox == []

    def test_a_broken_mail_server_does_not_break_the_tracker(
        self, alice, completed, settings, django_capture_on_commit_callbacks
    ) -> None:
        alice.email = "alice@example.com"
        alice.save()
        settings.MAILERS = {"default": {"BACKEND": "tests.test_notifications.BrokenBackend"}}
        video = self.submit(alice, completed, django_capture_on_commit_callbacks)
        assert Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED


class BrokenBackend:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: object) -> int:
        raise ConnectionRefusedError("smtp is down")
