"""A provider call is never sent twice for one user action: crashes, lost and unusable answers.

Real HTTP throughout: the simulator (which honours Idempotency-Key) with scripted faults, and
stand-in providers that ignore the key and make a job on every POST that reaches them, answer
500/503 or drop the connection after making it, cannot list, or send an unusable answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import selectors
from jobs.models import Provider, StatusChange, Video
from jobs.services.demo import seed_catalog
from jobs.services.submit import submit_create, submit_remix
from jobs.submission import CANNOT_LIST
from tests.conftest import Simulator, StandInHandler, drive, serving
from tests.helpers import poll_due_videos, sync_from_provider

UNCONFIRMED_WORDS = CANNOT_LIST.format(what="the provider did not answer in time")


class StandIn:
    """A Videos API that ignores Idempotency-Key: every POST that reaches it makes a new job.

    `fail_next` POSTs make their job and then answer with `fault` ("500", "503", or "drop": the
    connection closes with no answer). `extra` is merged into every answer about a job (an
    unusable field); `list_failures` GET /videos answer 503 first; `can_list=False` answers
    GET /videos with the 400 a gateway sends when it cannot list without a hint.
    """

    def __init__(
        self,
        *,
        fault: str = "500",
        fail_next: int = 0,
        can_list: bool = True,
        list_failures: int = 0,
        post_extra: dict[str, Any] | None = None,
        get_extra: dict[str, Any] | None = None,
    ) -> None:
        self.fault, self.fail_next = fault, fail_next
        self.can_list, self.list_failures = can_list, list_failures
        self.post_extra, self.get_extra = post_extra or {}, get_extra or {}
        self.jobs: list[dict[str, Any]] = []
        self.posts = 0
        self.keys: list[str] = []
        self.lock = threading.Lock()

    def make(self, prompt: str, model: str = "sora-2", remixed_from: str | None = None) -> dict:
        job = {
            "id": f"video_{uuid.uuid4().hex}",
            "object": "video",
            "model": model,
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            "size": "720x1280",
            "seconds": "4",
            "prompt": prompt,
            "remixed_from_video_id": remixed_from,
        }
        with self.lock:
            self.jobs.append(job)
        return job

    def handler(self) -> type[StandInHandler]:
        stand_in = self

        class Handler(StandInHandler):
            def send_json(self, status: int, body: object) -> None:
                self.reply(status, "application/json", json.dumps(body).encode())

            def error(self, status: int, message: str) -> None:
                self.send_json(status, {"error": {"message": message, "type": "server_error"}})

            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = urlsplit(self.path).path
                with stand_in.lock:
                    stand_in.posts += 1
                    stand_in.keys.append(self.headers.get("Idempotency-Key", ""))
                    failing = stand_in.fail_next > 0
                    stand_in.fail_next -= int(failing)
                if path.endswith("/remix"):
                    source = path.split("/")[-2]
                    job = stand_in.make(json.loads(body)["prompt"], remixed_from=source)
                else:
                    fields = form_fields(self.headers["Content-Type"], body)
                    job = stand_in.make(fields["prompt"], fields.get("model", "sora-2"))
                if not failing:
                    self.send_json(200, {**job, **stand_in.post_extra})
                elif stand_in.fault == "drop":
                    self.close_connection = True  # made the job, then nothing comes back
                else:
                    self.error(int(stand_in.fault), "The server had an error. Sorry about that!")

            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                url = urlsplit(self.path)
                if url.path == "/v1/videos":
                    self.listing(parse_qs(url.query))
                    return
                found = [j for j in stand_in.jobs if j["id"] == url.path.rsplit("/", 1)[-1]]
                if found:
                    self.send_json(200, {**found[0], **stand_in.get_extra})
                else:
                    self.send_json(404, {"error": {"message": "No such video", "code": None}})

            def listing(self, query: dict[str, list[str]]) -> None:
                if not stand_in.can_list:
                    self.send_json(400, {"error": {"message": "model is required to list"}})
                    return
                with stand_in.lock:
                    failing = stand_in.list_failures > 0
                    stand_in.list_failures -= int(failing)
                    newest = list(reversed(stand_in.jobs))
                if failing:
                    self.error(503, "The server is overloaded or not ready yet.")
                    return
                after = query.get("after", [None])[0]
                if after is not None:
                    ids = [j["id"] for j in newest]
                    newest = newest[ids.index(after) + 1 :] if after in ids else []
                limit = int(query.get("limit", ["20"])[0])
                page = newest[:limit]
                self.send_json(
                    200, {"object": "list", "data": page, "has_more": len(newest) > limit}
                )

        return Handler


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=default_policy).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = str(part.get_content())
    return fields


StartStandIn = Callable[..., tuple[StandIn, Provider]]


@pytest.fixture
def stand_in(db: Any, settings: Any) -> Iterator[StartStandIn]:
    """Start a stand-in provider: `stand_in(can_list=..., **StandIn options)`."""
    settings.POLL_MIN_SECONDS = 0.05  # back-offs in tens of milliseconds: the tests wait less
    settings.PROVIDER_MAX_RETRIES = 0  # each GET is one request: the counts stay exact
    with ExitStack() as stack:

        def start(
            *, can_list: bool = True, honours_idempotency: bool = False, **options: Any
        ) -> tuple[StandIn, Provider]:
            server = StandIn(can_list=can_list, **options)
            base_url = stack.enter_context(serving(server.handler()))
            provider = Provider.objects.create(
                name=f"Stand-in {uuid.uuid4().hex[:6]}",
                base_url=base_url,
                api_key_env="SIMULATOR_API_KEY",
                can_list=can_list,
                honours_idempotency=honours_idempotency,
            )
            seed_catalog(provider)
            return server, provider

        yield start


def create(user: Any, provider: Provider, prompt: str = "a lighthouse at dusk") -> Video:
    return submit_create(
        user=user,
        provider=provider,
        prompt=prompt,
        model="sora-2",
        size="720x1280",
        seconds="4",
        key=uuid.uuid4(),
    )


def fetch(video: Video) -> Video:
    return Video.objects.get(pk=video.pk)


def submitted(video: Video) -> Callable[[], bool]:
    return lambda: fetch(video).submission == Video.Submission.SUBMITTED


def unconfirmed_after_a_lost_answer(alice: Any, stand_in: StartStandIn) -> tuple[StandIn, Video]:
    """A provider that ignores keys and cannot list made the job, then answered 500."""
    server, provider = stand_in(can_list=False, fail_next=1, fault="500")
    video = create(alice, provider)
    drive(lambda: fetch(video).submission == Video.Submission.UNCONFIRMED)
    return server, fetch(video)


# --- the state is written before the POST ---------------------------------------------------


def test_the_send_is_recorded_before_the_post_goes_out(
    transactional_db: Any, alice: Any, stand_in: StartStandIn, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    server, provider = stand_in()
    video = create(alice, provider)  # committed: the tracker below sends it
    seen: list[tuple[str, object]] = []
    original = server.handler

    class Recording(original()):  # type: ignore[misc]  # a base class made at run time
        def do_POST(self) -> None:  # noqa: N802 (stdlib name)
            # Another connection reads the row while the POST is at the provider: only a
            # committed write is visible to it.
            try:
                rows = Video.objects.filter(pk=video.pk).values_list("submission", "sent_at")
                seen.append(rows.get())
            finally:
                connection.close()
            super().do_POST()

    with serving(Recording) as base_url:
        Provider.objects.filter(pk=provider.pk).update(base_url=base_url)
        poll_due_videos()
    assert seen and seen[0][0] == Video.Submission.SENDING and seen[0][1] is not None
    assert fetch(video).submission == Video.Submission.SUBMITTED


# --- a worker killed mid-POST ---------------------------------------------------------------


def killed_mid_post(video: Video, minutes_ago: float = 5) -> None:
    """What a worker killed while its POST was in flight leaves behind, once the lease ran out."""
    then = timezone.now() - timedelta(minutes=minutes_ago)
    Video.objects.filter(pk=video.pk).update(
        submission=Video.Submission.SENDING, sent_at=then, next_poll_at=timezone.now()
    )


def test_a_worker_killed_after_the_provider_made_the_job_does_not_send_it_again(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in()
    video = create(alice, provider, prompt="killed mid-post")
    made = server.make("killed mid-post")  # the POST had landed before the worker died
    server.make("someone else's job")  # newer, and not a match
    killed_mid_post(video)

    poll_due_videos()

    video.refresh_from_db()
    assert video.submission == Video.Submission.SUBMITTED and video.video_id == made["id"]
    assert server.posts == 0 and len(server.jobs) == 2  # exactly one job for this row
    assert video.history.filter(via=StatusChange.Via.SUBMIT, to_status="queued").exists()


def test_a_worker_killed_before_the_post_landed_sends_it_once(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in()
    video = create(alice, provider, prompt="never arrived")
    killed_mid_post(video)  # long enough ago that a job would be listed by now

    drive(submitted(video))

    assert server.posts == 1 and len(server.jobs) == 1
    assert fetch(video).video_id == server.jobs[0]["id"]
    assert server.keys == [str(video.idempotency_key)]  # the row's own key, still


def test_a_job_already_linked_to_another_row_is_not_taken(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in()
    first = create(alice, provider, prompt="twin")
    drive(submitted(first))
    second = create(alice, provider, prompt="twin")
    killed_mid_post(second)  # its own POST never landed; the only "twin" job is first's

    drive(submitted(second))

    assert server.posts == 2 and len(server.jobs) == 2
    assert fetch(first).video_id != fetch(second).video_id


def test_a_job_imported_after_it_was_sent_is_not_sent_again(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in()
    video = create(alice, provider, prompt="imported meanwhile")
    server.make("imported meanwhile")  # the lost POST had landed...
    killed_mid_post(video)
    sync_from_provider(provider=provider)  # ...and a sync adopted it before the lookup ran
    imported = Video.objects.get(provider=provider, submission=Video.Submission.IMPORTED)

    poll_due_videos()

    video.refresh_from_db()
    assert server.posts == 0 and video.submission == Video.Submission.UNCONFIRMED
    assert f"imported as #{imported.pk}" in video.last_error
    assert "second video" in video.last_error


def test_a_failed_lookup_backs_off_and_never_falls_through_to_a_send(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in(list_failures=2)
    video = create(alice, provider, prompt="list is down")
    killed_mid_post(video)

    poll_due_videos()

    video.refresh_from_db()
    assert server.posts == 0 and video.submission == Video.Submission.UNKNOWN
    assert "could not list its jobs" in video.last_error and video.next_poll_at is not None
    drive(submitted(video))
    assert server.posts == 1 and server.list_failures == 0


# --- ambiguous answers ----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "503", "drop"])
def test_an_answer_lost_after_the_provider_made_the_job_gives_one_job(
    alice: Any, stand_in: StartStandIn, fault: str
) -> None:
    server, provider = stand_in(fail_next=1, fault=fault)  # ignores keys, can list
    video = create(alice, provider, prompt=f"made, then {fault}")

    poll_due_videos()

    assert fetch(video).submission == Video.Submission.UNKNOWN
    drive(submitted(video))
    assert server.posts == 1 and len(server.jobs) == 1
    assert fetch(video).video_id == server.jobs[0]["id"]


def test_a_remix_whose_answer_was_lost_is_found_by_its_source(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in(fail_next=1, fault="503")
    source_job = server.make("the original")
    source = Video.objects.create(
        provider=provider,
        video_id=source_job["id"],
        model="sora-2",
        status=Video.Status.COMPLETED,
        submission=Video.Submission.IMPORTED,
        asset_state=Video.Assets.NONE,
        prompt="the original",
        size="720x1280",
        seconds="4",
    )
    server.make("the same words")  # a create with the same prompt is not the remix
    video = submit_remix(user=alice, source=source, prompt="the same words", key=uuid.uuid4())

    drive(submitted(video))

    remixes = [j for j in server.jobs if j["remixed_from_video_id"] == source_job["id"]]
    assert server.posts == 1 and len(remixes) == 1
    assert fetch(video).video_id == remixes[0]["id"]


def test_a_job_not_listed_on_two_looks_was_not_made_and_is_sent_again(
    simulator: Simulator, provider: Provider, alice: Any, settings: Any
) -> None:
    settings.POLL_MIN_SECONDS = 0.05
    simulator.script_faults("503", count=1, method="POST", path="/v1/videos")  # made nothing
    video = create(alice, provider)

    poll_due_videos()
    assert fetch(video).submission == Video.Submission.UNKNOWN
    drive(submitted(video))

    assert simulator.stats()["requests"]["POST /v1/videos"] == 2
    assert simulator.stats()["jobs_created"] == 1
    looks = video.history.filter(note__startswith="Looked for it")
    assert looks.count() == 1  # the first look missed it; the second decided


@pytest.mark.parametrize("fault", ["accept_then_drop", "accept_then_timeout"])
@pytest.mark.parametrize("honours", [False, True])
def test_the_simulator_accepting_then_losing_the_answer_gives_one_job(
    simulator: Simulator, provider: Provider, alice: Any, settings: Any, fault: str, honours: bool
) -> None:
    settings.POLL_MIN_SECONDS = 0.05
    settings.PROVIDER_TIMEOUT_SECONDS = 1  # the stalled answer is given up on quickly
    Provider.objects.filter(pk=provider.pk).update(honours_idempotency=honours)
    simulator.script_faults(fault, count=1, method="POST", path="/v1/videos")
    video = create(alice, Provider.objects.get(pk=provider.pk))

    poll_due_videos()
    assert fetch(video).submission == Video.Submission.UNKNOWN
    drive(submitted(video))

    stats = simulator.stats()
    assert stats["jobs_created"] == 1
    # Honoured keys: the re-send is the lookup (and returns the first job); else a lookup.
    assert stats["requests"]["POST /v1/videos"] == (2 if honours else 1)


# --- a provider that cannot list and ignores keys: the user decides -------------------------


def test_without_a_list_or_honoured_keys_the_job_waits_for_the_user(
    alice: Any, alice_client: Client, stand_in: StartStandIn
) -> None:
    server, video = unconfirmed_after_a_lost_answer(alice, stand_in)

    assert video.last_error == UNCONFIRMED_WORDS and video.next_poll_at is None
    Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())  # e.g. an old lease
    poll_due_videos()
    assert server.posts == 1 and fetch(video).submission == Video.Submission.UNCONFIRMED

    for page in (reverse("jobs:detail", args=[video.pk]), reverse("jobs:list")):
        html = alice_client.get(page).content.decode()
        assert "Could not confirm the submission" in html
        assert "Send again</button>" in html and "Give up</button>" in html
        assert "bills) a second video" in html
        assert reverse("jobs:send-again", args=[video.pk]) in html
        assert "csrfmiddlewaretoken" in html


def test_send_again_sends_exactly_one_more_post_even_on_a_double_click(
    alice: Any, alice_client: Client, stand_in: StartStandIn
) -> None:
    server, video = unconfirmed_after_a_lost_answer(alice, stand_in)
    url = reverse("jobs:send-again", args=[video.pk])

    first = alice_client.post(url, {"back": "list"})
    second = alice_client.post(url, {"back": "list"}, follow=True)

    assert first.status_code == 302 and first["Location"].endswith(f"#video-{video.pk}")
    assert second.status_code == 200
    assert "nothing to decide" in second.content.decode()
    drive(submitted(video))
    for _ in range(3):  # nothing is left to send
        Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())
        poll_due_videos()
    assert server.posts == 2  # the lost one, and the one the user asked for
    assert server.keys[0] == server.keys[1] == str(video.idempotency_key)
    assert fetch(video).video_id == server.jobs[-1]["id"]


def test_give_up_marks_the_job_failed_and_counts_nothing(
    alice: Any, alice_client: Client, stand_in: StartStandIn
) -> None:
    server, video = unconfirmed_after_a_lost_answer(alice, stand_in)
    assert video.cost_estimate > 0
    month = timezone.now() - timedelta(days=1)
    assert selectors.spent(since=month, user=alice) == video.cost_estimate  # held until decided

    response = alice_client.post(reverse("jobs:give-up", args=[video.pk]))
    again = alice_client.post(reverse("jobs:give-up", args=[video.pk]), follow=True)

    assert response.status_code == 302 and response["Location"] == video.get_absolute_url()
    assert "nothing to decide" in again.content.decode()
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and video.error_code == "not_confirmed"
    assert video.next_poll_at is None and not video.is_active
    assert selectors.spent(since=month, user=alice) == 0
    assert server.posts == 1
    page = alice_client.get(video.get_absolute_url()).content.decode()
    assert "not_confirmed" in page and "Send again</button>" not in page


def test_only_the_owner_or_staff_may_decide_and_only_with_the_csrf_token(
    alice: Any, bob: Any, staff: Any, stand_in: StartStandIn
) -> None:
    server, video = unconfirmed_after_a_lost_answer(alice, stand_in)
    intruder = Client()
    intruder.force_login(bob)

    for name in ("jobs:send-again", "jobs:give-up"):
        assert intruder.post(reverse(name, args=[video.pk])).status_code == 403
    assert fetch(video).submission == Video.Submission.UNCONFIRMED
    page = intruder.get(reverse("jobs:list")).content.decode()
    assert "Could not confirm the submission" in page and "Send again</button>" not in page

    browser = Client(enforce_csrf_checks=True)  # the owner, but a form without the token
    browser.force_login(alice)
    assert browser.post(reverse("jobs:send-again", args=[video.pk])).status_code == 403
    assert browser.get(reverse("jobs:send-again", args=[video.pk])).status_code == 405
    assert fetch(video).submission == Video.Submission.UNCONFIRMED

    admin = Client()
    admin.force_login(staff)
    assert admin.post(reverse("jobs:give-up", args=[video.pk])).status_code == 302
    assert fetch(video).status == Video.Status.FAILED and server.posts == 1


def test_deciding_on_a_job_that_is_not_unconfirmed_says_so_in_words(
    alice: Any, alice_client: Client, stand_in: StartStandIn
) -> None:
    server, provider = stand_in()
    video = create(alice, provider)
    drive(submitted(video))

    for name in ("jobs:send-again", "jobs:give-up"):
        response = alice_client.post(reverse(name, args=[video.pk]), follow=True)
        assert response.status_code == 200
        assert "nothing to decide" in response.content.decode()
    assert fetch(video).submission == Video.Submission.SUBMITTED and server.posts == 1


# --- unusable answers -----------------------------------------------------------------------


def test_an_unusable_answer_to_the_post_fails_the_row_and_is_never_resent(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in(post_extra={"size": "x" * 300})
    video = create(alice, provider)

    poll_due_videos()
    for _ in range(3):  # nothing brings it back to a send
        Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())
        poll_due_videos()

    video.refresh_from_db()
    assert server.posts == 1
    assert video.status == Video.Status.FAILED and video.error_code == "invalid_provider_answer"
    assert "check it there before sending again" in video.error_message
    assert video.size == "720x1280" and video.next_poll_at is None  # nothing of it was stored
    assert video.submission not in (*Video.WAITING, Video.Submission.UNCONFIRMED)


def test_an_unusable_status_answer_fails_the_row_instead_of_backing_off(
    alice: Any, stand_in: StartStandIn
) -> None:
    server, provider = stand_in(get_extra={"size": "x" * 300})
    video = create(alice, provider)
    drive(submitted(video))
    Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())

    poll_due_videos()

    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and video.error_code == "invalid_provider_answer"
    assert "could not be used" in video.error_message and video.next_poll_at is None
    assert video.poll_errors == 0 and server.posts == 1


# --- admin ----------------------------------------------------------------------------------


def test_the_admin_shows_and_edits_honours_idempotency(staff: Any, provider: Provider) -> None:
    admin = Client()
    admin.force_login(staff)
    listing = admin.get(reverse("admin:jobs_provider_changelist")).content.decode()
    assert "honours Idempotency-Key" in listing
    form = admin.get(reverse("admin:jobs_provider_change", args=[provider.pk])).content.decode()
    assert 'name="honours_idempotency"' in form
    assert "Only then is a create whose answer was lost sent again" in form
