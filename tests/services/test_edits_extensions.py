"""Edits and extensions against the simulator over HTTP: sent to their own endpoints, tracked
and archived like remixes, refused in words where the provider cannot, retried as the same
kind, sent once per form, and found again after a lost answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import av
import pytest
from django.core.exceptions import ValidationError

from jobs import lifecycle
from jobs.models import Budget, Provider, Video
from jobs.provider.ids import decode_litellm
from jobs.selectors import estimate_cost
from jobs.services.budgets import BudgetExceeded
from jobs.services.submit import retry_video, submit_edit, submit_extension
from tests.conftest import Simulator, drive
from tests.helpers import import_by_id

EDITS = "POST /v1/videos/edits"
EXTENSIONS = "POST /v1/videos/extensions"


@pytest.fixture
def deriving(provider: Provider) -> Provider:
    provider.can_edit = provider.can_extend = True
    provider.save()
    return provider


@pytest.fixture
def sent(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Video]], Video]:
    """Record a job with the worker told on commit (as in production)."""

    def record(make: Callable[[], Video]) -> Video:
        with django_capture_on_commit_callbacks(execute=True):
            return make()

    return record


def posts(simulator: Simulator, route: str) -> int:
    return int(simulator.stats()["requests"].get(route, 0))


def settled(video: Video) -> Video:
    """Run the tracker until nothing about the job will change by itself (archived, or not)."""
    drive(lambda: not Video.objects.get(pk=video.pk).will_change)
    video.refresh_from_db()
    return video


def test_an_edit_goes_to_edits_and_is_tracked_to_completed_and_settled(
    alice: Any, deriving: Provider, completed: Video, simulator: Simulator, sent: Any
) -> None:
    video = sent(
        lambda: submit_edit(user=alice, source=completed, prompt="purple sky", key=uuid.uuid4())
    )
    video = settled(video)
    assert (video.status, video.kind, video.source) == ("completed", "edit", completed)
    assert video.playable and video.thumbnail_file and video.spritesheet_file
    assert video.video_id and video.video_id != completed.video_id
    assert video.remixed_from_video_id == completed.video_id
    assert posts(simulator, EDITS) == 1 and posts(simulator, EXTENSIONS) == 0
    assert simulator.stats()["jobs_created"] == 1


def test_an_extension_is_as_long_as_its_source_and_the_added_seconds(
    alice: Any, deriving: Provider, completed: Video, simulator: Simulator, sent: Any
) -> None:
    video = sent(
        lambda: submit_extension(
            user=alice, source=completed, prompt="then it rains", seconds="4", key=uuid.uuid4()
        )
    )
    video = settled(video)
    total = int(completed.seconds) + 4
    assert (video.status, video.kind, video.added_seconds) == ("completed", "extension", "4")
    assert video.seconds == str(total)  # the provider's stitched total
    with av.open(video.video_file.path) as mp4:
        assert mp4.duration is not None
        assert abs(mp4.duration / av.time_base - total) < 0.5
    assert posts(simulator, EXTENSIONS) == 1 and posts(simulator, EDITS) == 0


@pytest.mark.parametrize(
    ("submit", "words"),
    [
        (lambda u, s, k: submit_edit(user=u, source=s, prompt="p", key=k), "does not offer edits"),
        (
            lambda u, s, k: submit_extension(user=u, source=s, prompt="p", seconds="4", key=k),
            "does not offer extensions",
        ),
    ],
)
def test_a_provider_that_cannot_is_refused_in_words_and_nothing_is_sent(
    alice: Any, completed: Video, simulator: Simulator, submit: Any, words: str
) -> None:
    with pytest.raises(ValidationError, match=f"The provider “Sim” {words}."):
        submit(alice, completed, uuid.uuid4())
    assert Video.objects.count() == 1  # only the source
    assert simulator.stats()["jobs_created"] == 0


def test_a_gateway_without_the_endpoint_shows_why_on_the_row(
    alice: Any, deriving: Provider, completed: Video, simulator: Simulator, sent: Any
) -> None:
    """Flagged as able, but the gateway answers 404 (new-api): the row says so, not a trace."""
    simulator.configure(quirks=["no_edits"])
    video = sent(lambda: submit_edit(user=alice, source=completed, prompt="p", key=uuid.uuid4()))
    drive(lambda: Video.objects.get(pk=video.pk).is_final)
    video.refresh_from_db()
    assert video.submission == Video.Submission.REJECTED and video.display_status == "Rejected"
    assert video.error_message and "Traceback" not in video.error_message
    assert simulator.stats()["jobs_created"] == 0


def test_a_double_submitted_form_sends_once(
    alice: Any, deriving: Provider, completed: Video, simulator: Simulator, sent: Any
) -> None:
    key = uuid.uuid4()

    def make() -> Video:
        return submit_extension(user=alice, source=completed, prompt="p", seconds="8", key=key)

    first, again = sent(make), sent(make)
    settled(first)
    assert first.pk == again.pk and Video.objects.filter(kind="extension").count() == 1
    assert posts(simulator, EXTENSIONS) == 1 and simulator.stats()["jobs_created"] == 1


@pytest.fixture
def forgetful(simulator: Simulator) -> Iterator[Simulator]:
    """A provider that ignores Idempotency-Key: a second POST would make a second job."""
    simulator.configure(ignore_idempotency=True)
    yield simulator
    simulator.configure(ignore_idempotency=False)


@pytest.mark.parametrize("kind", ["edit", "extension"])
def test_a_lost_answer_is_found_in_the_list_not_sent_again(
    alice: Any, deriving: Provider, completed: Video, forgetful: Simulator, sent: Any, kind: str
) -> None:
    simulator = forgetful
    simulator.script_faults("accept_then_drop", count=1, method="POST")
    if kind == "edit":
        video = sent(
            lambda: submit_edit(user=alice, source=completed, prompt="once", key=uuid.uuid4())
        )
    else:
        video = sent(
            lambda: submit_extension(
                user=alice, source=completed, prompt="once", seconds="4", key=uuid.uuid4()
            )
        )
    video.refresh_from_db()
    assert video.submission == Video.Submission.UNKNOWN
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    assert simulator.stats()["jobs_created"] == 1
    assert posts(simulator, EDITS if kind == "edit" else EXTENSIONS) == 1


class TestRetry:
    def failed(self, video: Video) -> Video:
        lifecycle.reject(video_id=video.pk, code="moderation_blocked", message="Blocked.")
        video.refresh_from_db()
        return video

    def test_a_failed_edit_is_retried_as_an_edit(
        self, alice: Any, deriving: Provider, completed: Video, simulator: Simulator
    ) -> None:
        video = self.failed(
            submit_edit(user=alice, source=completed, prompt="purple", key=uuid.uuid4())
        )
        new = retry_video(user=alice, video=video, key=uuid.uuid4())
        assert (new.kind, new.source, new.remixed_from_video_id) == (
            "edit",
            completed,
            completed.video_id,
        )
        assert settled(new).status == Video.Status.COMPLETED
        assert posts(simulator, EDITS) == 1 and posts(simulator, "POST /v1/videos/{id}/remix") == 0

    def test_a_failed_extension_is_retried_with_the_same_added_seconds(
        self, alice: Any, deriving: Provider, completed: Video
    ) -> None:
        video = self.failed(
            submit_extension(
                user=alice, source=completed, prompt="then", seconds="8", key=uuid.uuid4()
            )
        )
        new = retry_video(user=alice, video=video, key=uuid.uuid4())
        assert (new.kind, new.added_seconds, new.seconds) == ("extension", "8", video.seconds)
        assert new.cost_estimate == video.cost_estimate  # priced on the added 8 s
        assert settled(new).status == Video.Status.COMPLETED

    def test_a_provider_that_stopped_offering_it_refuses_the_retry_in_words(
        self, alice: Any, deriving: Provider, completed: Video
    ) -> None:
        video = self.failed(
            submit_extension(
                user=alice, source=completed, prompt="p", seconds="4", key=uuid.uuid4()
            )
        )
        deriving.can_extend = False
        deriving.save()
        video.refresh_from_db()
        with pytest.raises(ValidationError, match="does not offer extensions"):
            retry_video(user=alice, video=video, key=uuid.uuid4())
        assert not Video.objects.filter(retry_of=video).exists()


def test_through_litellm_a_lost_edit_is_found_by_its_upstream_source_id(
    alice: Any, deriving: Provider, forgetful: Simulator, sent: Any
) -> None:
    """LiteLLM names the source by the upstream's raw id, not the id it gave us for it."""
    simulator = forgetful
    simulator.configure(quirks=["litellm_ids"])
    source, _ = import_by_id(provider=deriving, video_id=simulator.seed(1)[0]["id"])
    assert source.video_id and decode_litellm(source.video_id) is not None
    simulator.script_faults("accept_then_drop", count=1, method="POST")
    video = sent(lambda: submit_edit(user=alice, source=source, prompt="once", key=uuid.uuid4()))
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    assert simulator.stats()["jobs_created"] == 1 and posts(simulator, EDITS) == 1


def test_the_budget_counts_only_the_added_seconds(
    alice: Any, deriving: Provider, completed: Video, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    unit = estimate_cost(deriving, completed.model, completed.size, "1")
    assert unit
    Budget.objects.create(user=alice, monthly_limit=unit * 4)
    with pytest.raises(BudgetExceeded, match=rf"This extension costs \${unit * 8:.2f}; you have"):
        submit_extension(user=alice, source=completed, prompt="p", seconds="8", key=uuid.uuid4())
    video = submit_extension(
        user=alice, source=completed, prompt="p", seconds="4", key=uuid.uuid4()
    )
    assert video.cost_estimate == unit * 4 and video.seconds == str(int(completed.seconds) + 4)
