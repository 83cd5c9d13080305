"""submit_remix and the worker's submission step, against the simulator over HTTP."""

from __future__ import annotations

import uuid

import pytest
import requests
from django.core.exceptions import PermissionDenied, ValidationError

from jobs.models import Provider, StatusChange, Video
from jobs.services.demo import seed_catalog
from jobs.services.submit import submit_create, submit_remix
from jobs.tracker import advance_video
from tests.conftest import drive, start_simulator, stop_simulator
from tests.helpers import import_by_id, poll_due_videos


def test_it_records_the_job_before_any_provider_call(alice, completed, simulator, settings) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    before = simulator.stats()["jobs_created"]
    video = submit_remix(user=alice, source=completed, prompt="make it sepia", key=uuid.uuid4())
    assert video.submission == Video.Submission.PENDING
    assert video.display_status == "Waiting to submit"
    assert video.prompt == "make it sepia" and video.source == completed
    assert (video.model, video.seconds, video.size) == (
        completed.model,
        completed.seconds,
        completed.size,
    )
    assert simulator.stats()["jobs_created"] == before  # nothing sent from the web request


def test_the_same_key_gives_one_job_and_one_provider_call(
    alice, completed, simulator, django_capture_on_commit_callbacks
) -> None:
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        first = submit_remix(user=alice, source=completed, prompt="p", key=key)
    with django_capture_on_commit_callbacks(execute=True):
        again = submit_remix(user=alice, source=completed, prompt="p", key=key)
    drive(lambda: Video.objects.get(pk=first.pk).is_final)
    assert first.pk == again.pk
    assert Video.objects.filter(source=completed).count() == 1
    assert simulator.stats()["jobs_created"] == 1


def test_another_users_key_is_refused(alice, bob, completed) -> None:
    key = uuid.uuid4()
    submit_remix(user=alice, source=completed, prompt="p", key=key)
    with pytest.raises(PermissionDenied):
        submit_remix(user=bob, source=completed, prompt="p", key=key)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "cannot be empty"),
        ("  \n\t ", "cannot be empty"),
        ("x" * 32_001, "32,001"),
        ("nul\x00byte", "NUL"),
    ],
)
def test_bad_prompts_are_refused_in_words(alice, completed, prompt: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        submit_remix(user=alice, source=completed, prompt=prompt, key=uuid.uuid4())
    assert message in " ".join(exc.value.messages)
    assert Video.objects.count() == 1  # only the source


def test_line_endings_are_normalised_before_counting(alice, completed) -> None:
    prompt = "a\r\n" * 16_000  # 48,000 characters typed, 32,000 after normalising
    video = submit_remix(user=alice, source=completed, prompt=prompt, key=uuid.uuid4())
    assert len(video.prompt) == 32_000


def test_non_bmp_unicode_survives_the_round_trip(alice, completed, simulator) -> None:
    video = submit_remix(user=alice, source=completed, prompt="🎬 𝔰𝔢𝔭𝔦𝔞 café", key=uuid.uuid4())
    drive(lambda: Video.objects.get(pk=video.pk).submission == Video.Submission.SUBMITTED)
    video.refresh_from_db()
    assert video.prompt == "🎬 𝔰𝔢𝔭𝔦𝔞 café"


def test_only_completed_sources_can_be_remixed(alice, completed) -> None:
    Video.objects.filter(pk=completed.pk).update(status=Video.Status.IN_PROGRESS)
    completed.refresh_from_db()
    with pytest.raises(ValidationError, match="completed"):
        submit_remix(user=alice, source=completed, prompt="p", key=uuid.uuid4())


def test_a_provider_without_remix_is_refused(alice, completed, provider) -> None:
    provider.can_remix = False
    provider.save()
    completed.refresh_from_db()
    with pytest.raises(ValidationError, match="does not offer remix"):
        submit_remix(user=alice, source=completed, prompt="p", key=uuid.uuid4())


def test_a_rate_limited_provider_leaves_the_job_waiting_then_submits(
    alice, completed, simulator, django_capture_on_commit_callbacks
) -> None:
    simulator.script_faults("429", count=1, method="POST")
    with django_capture_on_commit_callbacks(execute=True):
        video = submit_remix(user=alice, source=completed, prompt="later", key=uuid.uuid4())
    video.refresh_from_db()
    assert video.submission == Video.Submission.PENDING
    assert "rate" in video.last_error.lower() or "429" in video.last_error
    assert video.next_poll_at is not None
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    assert simulator.stats()["jobs_created"] == 1


def test_a_provider_that_is_down_loses_nothing(
    alice, completed, simulator, django_capture_on_commit_callbacks
) -> None:
    simulator.script_faults("503", count=1, method="POST")
    with django_capture_on_commit_callbacks(execute=True):
        video = submit_remix(user=alice, source=completed, prompt="keep me", key=uuid.uuid4())
    video.refresh_from_db()
    # A 503 may come after the job was made: looked up before it is sent again.
    assert video.submission == Video.Submission.UNKNOWN and video.prompt == "keep me"
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    assert simulator.stats()["jobs_created"] == 1


def test_a_lost_answer_is_reconciled_without_a_duplicate(
    alice, completed, simulator, django_capture_on_commit_callbacks
) -> None:
    simulator.script_faults("accept_then_drop", count=1, method="POST")
    with django_capture_on_commit_callbacks(execute=True):
        video = submit_remix(user=alice, source=completed, prompt="once", key=uuid.uuid4())
    video.refresh_from_db()
    assert video.submission == Video.Submission.UNKNOWN
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    assert simulator.stats()["jobs_created"] == 1


def test_provider_validation_errors_show_on_the_row(alice, provider, simulator, settings) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    video = submit_create(
        user=alice,
        provider=provider,
        prompt="p",
        model="sora-2",
        size="720x1280",
        seconds="4",
        key=uuid.uuid4(),
    )
    # A stale catalog let through a model the provider does not have: it answers 400.
    Video.objects.filter(pk=video.pk).update(model="sora-9")
    assert advance_video(video_id=video.pk)
    video.refresh_from_db()
    assert video.submission == Video.Submission.REJECTED
    assert video.status == Video.Status.FAILED
    assert "model" in video.error_message and video.next_poll_at is None
    assert video.prompt == "p"


def test_transitions_are_recorded_once_each(alice, completed, simulator) -> None:
    video = submit_remix(user=alice, source=completed, prompt="history", key=uuid.uuid4())
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    steps = list(StatusChange.objects.filter(video=video).values_list("to_status", flat=True))
    assert steps[0] == "queued" and steps[-1] == "completed"
    assert steps.count("completed") == 1


def test_a_provider_that_goes_away_mid_flight_loses_and_duplicates_nothing(
    alice, tmp_path, settings, django_capture_on_commit_callbacks
) -> None:
    """The simulator process is stopped while jobs are waiting, queued and rendering, a job is
    submitted while it is gone, and it comes back (same port, same data): all finish, once."""
    settings.PROVIDER_MAX_RETRIES = 0  # each step fails fast while the provider is away
    sim = start_simulator(tmp_path / "sim", "--speed", "20", "--fps", "6")
    try:
        provider = Provider.objects.create(
            name="Flaky", base_url=sim.base_url, api_key_env="SIMULATOR_API_KEY"
        )
        seed_catalog(provider)
        source, _ = import_by_id(provider=provider, video_id=sim.seed(1)[0]["id"])

        def remix(prompt: str, *, now: bool = True) -> Video:
            # now=False: recorded, but the task worker has not picked it up yet
            with django_capture_on_commit_callbacks(execute=now):
                return submit_remix(user=alice, source=source, prompt=prompt, key=uuid.uuid4())

        sent = [remix(f"before the outage {n}") for n in range(3)]  # submitted straight away
        waiting = remix("not yet sent", now=False)
        stop_simulator(sim)
        poll_due_videos()  # the source's archive, the refreshes and the submit fail
        during = remix("sent during the outage")
        poll_due_videos()
        for video in Video.objects.filter(pk__in=[waiting.pk, during.pk]):
            assert video.submission == Video.Submission.PENDING and video.is_active
            assert "reach the provider" in video.last_error or "Waiting" in video.last_error
        assert all(Video.objects.get(pk=v.pk).is_active for v in sent)

        sim = start_simulator(tmp_path / "sim", "--speed", "20", "--fps", "6", port=sim.port)
        ours = [v.pk for v in (*sent, waiting, during)]
        drive(lambda: all(v.is_final for v in Video.objects.filter(pk__in=ours)), timeout=40)
        finished = Video.objects.filter(pk__in=ours)
        assert {v.status for v in finished} == {Video.Status.COMPLETED}
        listed = requests.get(
            f"{sim.base_url}/videos",
            params={"limit": 100},
            headers={"Authorization": "Bearer sk-test"},
            timeout=10,
        ).json()["data"]
        remixes = [v for v in listed if v["remixed_from_video_id"] == source.video_id]
        assert len(remixes) == 5  # one provider job per user action, none twice
        assert {v["id"] for v in remixes} == {v.video_id for v in finished}
    finally:
        stop_simulator(sim)
