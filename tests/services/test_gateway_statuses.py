"""Statuses beyond the four: `unknown` keeps polling with back-off and says so; `cancelled` and
`expired` from the provider are final with their reason; the finished file's URL is kept.
Against the simulator's quirks and a stand-in provider over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import lifecycle
from jobs.models import Charge, Provider, StatusChange, Video
from tests.conftest import Simulator, StandInHandler, drive, serving
from tests.helpers import import_by_id, poll_due_videos


def test_an_unknown_state_backs_off_says_so_and_then_completes(
    provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["unknown_status"], speed=10)  # a 4 s clip renders in ~2 s
    remote = provider.client().create(prompt="a lantern on the water", model="sora-2", seconds="4")
    video, _ = import_by_id(provider=provider, video_id=remote.id)
    seen: list[tuple[str, str, float]] = []

    def record() -> bool:
        row = Video.objects.get(pk=video.pk)
        if row.last_error and row.next_poll_at and row.last_polled_at:
            wait = (row.next_poll_at - row.last_polled_at).total_seconds()
            seen.append((row.status, row.last_error, wait))
        return row.status == Video.Status.COMPLETED

    drive(record)
    unknown = [entry for entry in seen if "unknown" in entry[1]]
    assert unknown, seen
    for status, words, _wait in unknown:
        assert status == Video.Status.QUEUED  # the row keeps its own status meanwhile
        assert words.startswith("The provider reports its state as unknown; asking again in ")
        assert words.endswith(" s.")
    waits = sorted({round(wait, 2) for _s, _w, wait in unknown})
    assert len(waits) >= 2 and waits[-1] >= 2 * waits[0]  # it backs off, read after read
    video.refresh_from_db()
    assert video.poll_errors == 0 and video.last_error == "" and video.progress == 100
    assert video.error_code == "" and video.error_message == ""


def test_the_row_says_the_state_is_unknown(
    provider: Provider, simulator: Simulator, alice_client: Client
) -> None:
    simulator.configure(quirks=["unknown_status"], speed=1)  # stays in progress for the test
    remote = provider.client().create(prompt="a slow lantern", model="sora-2", seconds="4")
    video, _ = import_by_id(provider=provider, video_id=remote.id)
    drive(lambda: "unknown" in Video.objects.get(pk=video.pk).last_error, timeout=10)
    page = alice_client.get(reverse("jobs:list")).content.decode()
    assert "The provider reports its state as unknown; asking again in" in page


# --- final states from a stand-in provider -----------------------------------------------------


class Answers:
    """What the stand-in's GET /v1/videos/{id} answers; set by each test."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.lock = threading.Lock()

    def handler(self) -> type[StandInHandler]:
        answers = self

        class Handler(StandInHandler):
            def do_GET(self) -> None:
                with answers.lock:
                    body = json.dumps(answers.body).encode()
                self.reply(200, "application/json", body)

        return Handler


@pytest.fixture
def standin(db: None) -> Iterator[tuple[Answers, Provider]]:
    answers = Answers()
    with serving(answers.handler()) as url:
        yield (
            answers,
            Provider.objects.create(name="Gateway", base_url=url, api_key_env="SIMULATOR_API_KEY"),
        )


def in_flight(provider: Provider, owner: Any, *, progress: int = 0) -> Video:
    video = Video.objects.create(
        provider=provider,
        video_id="task_abc",
        model="sora-2",
        prompt="a paper boat",
        size="720x1280",
        seconds="4",
        status=Video.Status.IN_PROGRESS if progress else Video.Status.QUEUED,
        progress=progress,
        submission=Video.Submission.SUBMITTED,
        owner=owner,
        cost_estimate=Decimal("0.40"),
        next_poll_at=timezone.now(),
    )
    lifecycle.open_charge(video)
    return video


def answer(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": "task_abc",
        "object": "video",
        "model": "sora-2",
        "status": status,
        "progress": 30,
        "prompt": "a paper boat",
        "size": "720x1280",
        "seconds": "4",
        **fields,
    }


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        ("expired", None, "The provider let this job expire before it finished."),
        ("cancelled", None, "The provider cancelled this job."),
        ("canceled", None, "The provider cancelled this job."),  # the US spelling, normalised
        ("expired", {"message": "Generation timed out upstream"}, "Generation timed out upstream"),
        ("cancelled", "Cancelled by the moderator", "Cancelled by the moderator"),
    ],
)
def test_cancelled_and_expired_are_final_with_their_reason(
    standin: tuple[Answers, Provider],
    alice: Any,
    alice_client: Client,
    status: str,
    error: Any,
    words: str,
) -> None:
    answers, provider = standin
    video = in_flight(provider, alice)
    answers.body = answer(status, error=error)
    assert poll_due_videos() == 1
    video.refresh_from_db()
    final = Video.Status.EXPIRED if status == "expired" else Video.Status.CANCELLED
    assert video.status == final and video.error_message == words
    assert video.asset_state == Video.Assets.NONE and video.next_poll_at is None
    assert video.is_final and video.notify_pending
    assert [h.to_status for h in video.history.all()][-1] == final
    charge = Charge.objects.get(video=video)
    assert (charge.amount, charge.basis) == (Decimal("0"), Charge.Basis.NONE)  # nothing made
    page = alice_client.get(video.get_absolute_url()).content.decode()
    assert words.replace("’", "&#x27;") in page or words in page
    label = "Expired at the provider" if final == Video.Status.EXPIRED else "Cancelled"
    assert f'<span class="badge {final}">{label}</span>' in page
    assert poll_due_videos() == 0  # nothing left to do


def test_a_job_cancelled_after_it_started_keeps_its_charge(
    standin: tuple[Answers, Provider], alice: Any
) -> None:
    answers, provider = standin
    video = in_flight(provider, alice, progress=40)
    answers.body = answer("cancelled")
    poll_due_videos()
    video.refresh_from_db()
    assert video.status == Video.Status.CANCELLED
    charge = Charge.objects.get(video=video)
    assert (charge.amount, charge.basis) == (Decimal("0.40"), Charge.Basis.ESTIMATE)


def test_an_expired_job_is_listed_as_expired(
    standin: tuple[Answers, Provider], alice: Any, alice_client: Client
) -> None:
    answers, provider = standin
    video = in_flight(provider, alice)
    answers.body = answer("expired")
    poll_due_videos()
    page = alice_client.get(reverse("jobs:list")).content.decode()
    assert f'id="video-{video.pk}" data-status="expired"' in page
    assert '<span class="badge expired">Expired at the provider</span>' in page
    assert "The provider let this job expire before it finished." in page
    assert StatusChange.objects.filter(video=video, to_status="expired").exists()


def test_the_finished_files_url_is_kept_and_bounded(
    standin: tuple[Answers, Provider], alice: Any
) -> None:
    answers, provider = standin
    video = in_flight(provider, alice, progress=50)
    url = "https://cdn.example.com/v/task_abc.mp4?sig=abc"
    answers.body = answer("completed", progress=100, metadata={"url": url})
    poll_due_videos()
    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED and video.content_url == url
    # A later answer without one keeps it; a URL that is not http(s) is never stored.
    Video.objects.filter(pk=video.pk).update(status=Video.Status.IN_PROGRESS, content_url="")
    answers.body = answer("completed", progress=100, metadata={"url": "file:///etc/passwd"})
    lifecycle.apply_snapshot(
        video_id=video.pk,
        remote=provider.client().retrieve("task_abc"),
        via=StatusChange.Via.POLL,
    )
    video.refresh_from_db()
    assert video.content_url == ""


def test_the_simulators_content_url_is_stored(provider: Provider, simulator: Simulator) -> None:
    simulator.configure(quirks=["content_url"])
    remote = simulator.seed(1)[0]
    video, _ = import_by_id(provider=provider, video_id=remote["id"])
    assert video.content_url == remote["metadata"]["url"]
    assert video.content_url.startswith(simulator.base_url.removesuffix("/v1") + "/files/")
