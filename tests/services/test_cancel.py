"""Cancel: a job still waiting to submit is cancelled here and never sent; a queued or running
one is cancelled at a provider that can (Provider.can_cancel), tracking stops, and the row
says what was charged. Where the provider cannot, there is no button and a reason instead."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from jobs import lifecycle
from jobs.models import Charge, Provider, StatusChange, Video
from jobs.provider.schema import RemoteVideo
from jobs.services.manage import cancel_video
from jobs.services.submit import submit_remix
from tests.conftest import Simulator, drive
from tests.helpers import poll_due_videos


@pytest.fixture
def cancelling(simulator: Simulator, provider: Provider) -> Iterator[Simulator]:
    """A provider that can cancel, rendering slowly enough (speed 1: 20 s) to be caught."""
    simulator.configure(allow_cancel=True, speed=1)
    Provider.objects.filter(pk=provider.pk).update(can_cancel=True)
    yield simulator
    simulator.configure(allow_cancel=False)


def remix(user: User, source: Video) -> Video:
    return submit_remix(user=user, source=source, prompt="in sepia", key=uuid.uuid4())


class TestWaiting:
    def test_a_waiting_job_is_cancelled_here_and_never_sent(
        self, alice: User, completed: Video, simulator: Simulator, settings: Any
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        created = simulator.stats()["jobs_created"]
        video = remix(alice, completed)
        words = cancel_video(video_id=video.pk, user=alice)
        assert words == f"Cancelled #{video.pk} before it was sent: $0.00 charged."
        video.refresh_from_db()
        assert (video.status, video.next_poll_at, video.video_id) == ("cancelled", None, None)
        assert not video.is_active and video.display_status == "Cancelled"
        assert video.get_submission_display() == "Never sent: cancelled here"
        charge = Charge.objects.get(video=video)
        assert (charge.amount, charge.basis) == (Decimal("0"), Charge.Basis.NONE)
        Video.objects.filter(pk=video.pk).update(next_poll_at=video.requested_at)  # even so
        poll_due_videos()
        assert simulator.stats()["jobs_created"] == created  # never sent
        assert Video.objects.get(pk=video.pk).status == "cancelled"

    def test_one_a_worker_is_sending_is_not_cancelled_blindly(
        self, alice: User, completed: Video, settings: Any
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        video = remix(alice, completed)
        assert lifecycle.mark_sending(video_id=video.pk, was=Video.Submission.PENDING)
        with pytest.raises(ValidationError, match="being sent to the provider right now"):
            cancel_video(video_id=video.pk, user=alice)
        assert Video.objects.get(pk=video.pk).submission == Video.Submission.SENDING
        # The conditional UPDATE is the guard: it only moves a row still PENDING.
        assert not lifecycle.cancel_waiting(video_id=video.pk)

    def test_only_the_owner_or_staff(
        self, alice: User, bob: User, staff: User, completed: Video, settings: Any
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        video = remix(alice, completed)
        with pytest.raises(PermissionDenied):
            cancel_video(video_id=video.pk, user=bob)
        assert "before it was sent" in cancel_video(video_id=video.pk, user=staff)


class TestAtTheProvider:
    def test_a_running_job_is_cancelled_there_and_tracking_stops(
        self,
        alice_client: Client,
        alice: User,
        completed: Video,
        cancelling: Simulator,
        django_capture_on_commit_callbacks,
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            video = remix(alice, completed)
        drive(lambda: Video.objects.get(pk=video.pk).status == "in_progress", timeout=30)
        video.refresh_from_db()
        body = alice_client.get(video.get_absolute_url()).content.decode()
        assert f'action="/videos/{video.pk}/cancel/"' in body

        r = alice_client.post(f"/videos/{video.pk}/cancel/")
        assert r.status_code == 302
        video.refresh_from_db()
        assert (video.status, video.next_poll_at) == ("cancelled", None)
        remote = video.provider.client().retrieve(video.video_id or "")
        assert remote.status == "cancelled"
        charge = Charge.objects.get(video=video)  # it had started: the estimate stands
        assert (charge.amount, charge.basis) == (video.cost_estimate, Charge.Basis.ESTIMATE)
        page = alice_client.get(r["Location"]).content.decode()
        assert f"Cancelled #{video.pk} at the provider: ${video.cost_estimate:.2f} charged" in page
        assert f"charged ${video.cost_estimate:.2f} (it had started)" in page

        # A late answer from a poll that was in flight does not bring it back.
        late = RemoteVideo.from_json(
            {"id": video.video_id, "object": "video", "status": "in_progress", "progress": 40}
        )
        lifecycle.apply_snapshot(video_id=video.pk, remote=late, via=StatusChange.Via.POLL)
        video.refresh_from_db()
        assert (video.status, video.next_poll_at) == ("cancelled", None)

    def test_a_queued_job_cancelled_there_costs_nothing(
        self, alice: User, completed: Video, cancelling: Simulator, settings: Any
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        cancelling.configure(speed=0.05)  # queued for 40 s
        video = remix(alice, completed)
        poll_due_videos()  # sent: queued at the provider
        video.refresh_from_db()
        assert video.video_id and video.status == "queued"
        words = cancel_video(video_id=video.pk, user=alice)
        assert "$0.00 charged, it was cancelled before it started" in words
        assert Charge.objects.get(video=video).basis == Charge.Basis.NONE

    def test_without_the_capability_there_is_no_button_and_a_reason(
        self,
        alice_client: Client,
        alice: User,
        completed: Video,
        simulator: Simulator,
        settings: Any,
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        simulator.configure(speed=0.05)
        video = remix(alice, completed)
        poll_due_videos()
        video.refresh_from_db()
        assert video.video_id and not video.provider.can_cancel
        body = alice_client.get(video.get_absolute_url()).content.decode()
        assert f'action="/videos/{video.pk}/cancel/"' not in body
        assert "cannot cancel a job once it is queued" in body
        assert f'action="/videos/{video.pk}/cancel/"' not in alice_client.get("/").content.decode()
        with pytest.raises(ValidationError, match="cannot cancel"):
            cancel_video(video_id=video.pk, user=alice)
        assert Video.objects.get(pk=video.pk).status == "queued"

    def test_a_cancelled_answer_from_the_provider_is_final(
        self, alice: User, completed: Video, settings: Any
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        video = remix(alice, completed)
        Video.objects.filter(pk=video.pk).update(submission="submitted", video_id="video_gone")
        answer = {"id": "video_gone", "object": "video", "status": "cancelled", "progress": 0}
        lifecycle.apply_snapshot(
            video_id=video.pk, remote=RemoteVideo.from_json(answer), via=StatusChange.Via.POLL
        )
        video.refresh_from_db()
        assert (video.status, video.next_poll_at, video.asset_state) == ("cancelled", None, "none")
        assert Charge.objects.get(video=video).amount == 0
        late = {**answer, "status": "in_progress", "progress": 50}
        lifecycle.apply_snapshot(
            video_id=video.pk, remote=RemoteVideo.from_json(late), via=StatusChange.Via.POLL
        )
        assert Video.objects.get(pk=video.pk).status == "cancelled"
