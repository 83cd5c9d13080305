"""Spend survives deletion: every job has a Charge (the estimate, the provider's figure where it
gives one, $0 when it fails), usage and budgets add those up, and deleting a video changes
nothing in either. Failed jobs show $0 on every page."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from jobs import lifecycle, selectors
from jobs.lib.months import month_start
from jobs.models import Budget, Charge, Provider, StatusChange, Video
from jobs.provider.schema import RemoteVideo
from jobs.services.manage import delete_video, give_up
from jobs.services.submit import submit_remix
from tests.conftest import Simulator, drive


def remix(user: User, source: Video, prompt: str = "in sepia") -> Video:
    return submit_remix(user=user, source=source, prompt=prompt, key=uuid.uuid4())


def finish(video: Video) -> Video:
    drive(lambda: Video.objects.get(pk=video.pk).is_final and not Video.objects.get(
        pk=video.pk
    ).is_archiving)  # fmt: skip
    video.refresh_from_db()
    return video


class TestTheLedger:
    def test_recording_a_job_writes_its_charge(self, alice: User, completed: Video) -> None:
        video = remix(alice, completed)
        charge = Charge.objects.get(video=video)
        assert (charge.owner, charge.amount, charge.basis) == (
            alice,
            video.cost_estimate,
            Charge.Basis.ESTIMATE,
        )
        assert video.cost_estimate > 0
        assert (charge.model, charge.size, charge.seconds, charge.prompt) == (
            video.model,
            video.size,
            video.seconds,
            "in sepia",
        )
        assert charge.provider_name == completed.provider.name

    def test_an_imported_job_is_charged_too(self, completed: Video) -> None:
        charge = Charge.objects.get(video=completed)
        assert charge.owner is None and charge.amount == completed.cost_estimate > 0

    def test_a_failed_job_costs_nothing(
        self,
        alice: User,
        completed: Video,
        simulator: Simulator,
        django_capture_on_commit_callbacks,
    ) -> None:
        simulator.configure(fail_rate=1)
        with django_capture_on_commit_callbacks(execute=True):
            video = remix(alice, completed)
        video = finish(video)
        assert video.status == Video.Status.FAILED
        charge = Charge.objects.get(video=video)
        assert (charge.amount, charge.basis) == (Decimal("0"), Charge.Basis.NONE)
        assert selectors.spent(since=month_start(), user=alice) == 0

    def test_rejected_and_given_up_jobs_cost_nothing(self, alice: User, completed: Video) -> None:
        rejected, unconfirmed = remix(alice, completed, "a"), remix(alice, completed, "b")
        lifecycle.reject(video_id=rejected.pk, code="invalid_request", message="No.")
        Video.objects.filter(pk=unconfirmed.pk).update(submission=Video.Submission.UNCONFIRMED)
        give_up(video_id=unconfirmed.pk, user=alice)
        for video in (rejected, unconfirmed):
            assert Charge.objects.get(video=video).basis == Charge.Basis.NONE
        assert selectors.spent(since=month_start(), user=alice) == 0

    def test_the_provider_figure_replaces_the_estimate(self, alice: User, completed: Video) -> None:
        video = remix(alice, completed)
        Video.objects.filter(pk=video.pk).update(
            submission=Video.Submission.SUBMITTED, video_id="video_priced"
        )
        answer = {
            "id": "video_priced",
            "object": "video",
            "status": "in_progress",
            "progress": 10,
            "usage": {"cost": 0.37},
        }
        remote = RemoteVideo.from_json(answer)
        lifecycle.apply_snapshot(video_id=video.pk, remote=remote, via=StatusChange.Via.POLL)
        charge = Charge.objects.get(video=video)
        assert (charge.amount, charge.basis) == (Decimal("0.3700"), Charge.Basis.PROVIDER)

    @pytest.mark.parametrize(
        ("raw", "figure"),
        [
            ({"cost": "1.5"}, Decimal("1.5000")),
            ({"usage": {"cost": 2}}, Decimal("2.0000")),
            ({"cost": -1}, None),
            ({"cost": "NaN"}, None),
            ({"cost": True}, None),
            ({"cost": "lots"}, None),
            ({"usage": "x"}, None),
            ({}, None),
        ],
    )
    def test_only_a_plain_amount_counts_as_the_provider_figure(
        self, raw: dict[str, object], figure: Decimal | None
    ) -> None:
        assert lifecycle.provider_cost(raw) == figure


class TestDeletion:
    def test_deleting_a_video_changes_neither_usage_nor_budgets(
        self,
        alice_client: Client,
        alice: User,
        completed: Video,
        django_capture_on_commit_callbacks,
    ) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("10"))
        with django_capture_on_commit_callbacks(execute=True):
            video = remix(alice, completed)
        video = finish(video)
        assert video.status == Video.Status.COMPLETED
        before = alice_client.get("/usage/").context
        spent = selectors.spent(since=month_start(), user=alice)
        assert spent == video.cost_estimate > 0

        delete_video(video=video, user=alice)

        assert not Video.objects.filter(pk=video.pk).exists()
        charge = Charge.objects.get(owner=alice)
        assert charge.video is None and charge.amount == spent  # the record stays
        after = alice_client.get("/usage/").context
        assert after["usage"].total == before["usage"].total == spent
        assert [b.spent for b in after["budgets"]] == [spent]
        assert selectors.spent(since=month_start(), user=alice) == spent

    def test_deleting_a_waiting_job_costs_nothing(
        self, alice: User, completed: Video, settings
    ) -> None:
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        video = remix(alice, completed)  # never sent: no worker runs
        delete_video(video=video, user=alice)
        assert Charge.objects.get(owner=alice).amount == 0


class TestFailedShowsZero:
    def test_detail_compare_and_batch_pages_show_0_for_a_failed_job(
        self, alice_client: Client, alice: User, completed: Video, provider: Provider
    ) -> None:
        video = remix(alice, completed)
        lifecycle.reject(video_id=video.pk, code="moderation_blocked", message="Blocked.")
        assert video.cost_estimate > 0
        body = alice_client.get(video.get_absolute_url()).content.decode()
        assert "$0.00" in body and f"${video.cost_estimate:.2f}" not in body.split("Charged")[1]
        body = alice_client.get(f"/compare/?ids={completed.pk},{video.pk}").content.decode()
        cells = body.split("<dt>cost</dt>")
        assert "$0.00" in cells[2] and f"${completed.cost_estimate:.2f}" in cells[1]
