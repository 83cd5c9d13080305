"""Outbound notifications over the wire: signed, bounded, retried, never sent twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook

from jobs.models import NotificationTarget, OutboundDelivery, Provider, Video
from jobs.outbound import queue_event
from jobs.services import outbound
from tests.conftest import Simulator, StandInHandler, drive, serving


class Receiver:
    """A stand-in receiver: answers each POST with the next scripted status (then 200)."""

    def __init__(self, statuses: tuple[int, ...] = (), *, body: bytes = b"ok") -> None:
        self.statuses = list(statuses)
        self.body = body
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def handler(self) -> type[StandInHandler]:
        receiver = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if 300 <= status < 400:
                    self.send_response(status)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.reply(status, "text/plain", receiver.body)

        return Handler


Serve = Callable[..., tuple[Receiver, str]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    from contextlib import ExitStack

    with ExitStack() as stack:

        def start(*statuses: int, body: bytes = b"ok") -> tuple[Receiver, str]:
            receiver = Receiver(statuses, body=body)
            base = stack.enter_context(serving(receiver.handler()))
            return receiver, base.removesuffix("/v1") + "/hook"

        yield start


@pytest.fixture
def team(alice: User) -> Group:
    group = Group.objects.create(name="Studio")
    alice.groups.add(group)
    return group


@pytest.fixture
def video(alice: User) -> Video:
    provider = Provider.objects.create(name="P", base_url="http://127.0.0.1:9/v1")
    return Video.objects.create(
        owner=alice, provider=provider, prompt="A lighthouse in fog", status="completed"
    )


def target(team: Group, url: str, kind: str = "webhook", **extra: Any) -> NotificationTarget:
    return NotificationTarget.objects.create(
        team=team, kind=kind, url=url, allow_private=extra.pop("allow_private", True), **extra
    )


def make_due() -> None:
    OutboundDelivery.objects.filter(state="pending").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_generic_webhook_is_signed_as_standard_webhooks_says(
    team: Group, video: Video, bob: User, serve: Serve
) -> None:
    receiver, url = serve()
    hook = target(team, url)
    queue_event("video.approved", video=video, actor=bob)
    assert outbound.deliver_due() == 1

    ((headers, body),) = receiver.received
    payload = Webhook(hook.secret).verify(body, headers)  # raises if the signature is wrong
    row = OutboundDelivery.objects.get()
    assert headers["webhook-id"] == row.message_id
    assert payload["type"] == "video.approved"
    assert payload["data"]["video"]["id"] == video.pk
    assert payload["data"]["video"]["url"].endswith(f"/videos/{video.pk}/")
    assert payload["data"]["actor"] == "bob"
    assert (row.state, row.attempts, row.last_status, row.sent_at is not None) == (
        "sent",
        1,
        200,
        True,
    )
    # A body changed on the way no longer verifies.
    with pytest.raises(Exception, match="signature"):
        Webhook(hook.secret).verify(body.replace(b"bob", b"eve"), headers)


def test_a_slack_target_gets_a_text_body(team: Group, video: Video, serve: Serve) -> None:
    receiver, url = serve()
    target(team, url, kind="slack")
    queue_event("video.completed", video=video)
    outbound.deliver_due()
    ((headers, body),) = receiver.received
    sent = json.loads(body)
    assert list(sent) == ["text"]
    assert "“A lighthouse in fog” completed." in sent["text"]
    assert f"/videos/{video.pk}/|Open video #{video.pk}>" in sent["text"]
    assert "webhook-signature" not in headers


def test_a_500_is_retried_after_a_back_off_then_sent(
    team: Group, video: Video, serve: Serve
) -> None:
    receiver, url = serve(500, body=b"x" * 1_000_000)
    target(team, url)
    queue_event("video.failed", video=video)
    before = timezone.now()
    outbound.deliver_due()
    row = OutboundDelivery.objects.get()
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
    assert row.last_error.startswith("The target answered HTTP 500: xxx")
    assert len(row.last_error) <= outbound.ERROR_CHARS  # a huge answer is not kept (or read)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + timedelta(seconds=outbound.BACKOFF_BASE)
    assert outbound.deliver_due() == 0  # not due yet
    make_due()
    outbound.deliver_due()
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("sent", 2, 200, "")
    assert len(receiver.received) == 2
    # Each try is kept, not only the last one's answer.
    tries = list(row.tries.values_list("number", "sent", "status"))
    assert tries == [(1, False, 500), (2, True, 200)]
    assert row.tries.first().error.startswith("The target answered HTTP 500")  # type: ignore[union-attr]
    assert outbound.backoff(3) == timedelta(seconds=4 * outbound.BACKOFF_BASE)


def test_it_gives_up_after_the_last_attempt(
    team: Group, video: Video, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "MAX_ATTEMPTS", 3)
    receiver, url = serve(503, 503, 503, 503)
    target(team, url)
    queue_event("video.failed", video=video)
    for _ in range(5):
        make_due()
        outbound.deliver_due()
    row = OutboundDelivery.objects.get()
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert row.last_error.startswith("Gave up after 3 attempts. The target answered HTTP 503")
    assert len(receiver.received) == 3


def test_a_private_target_is_refused_unless_staff_allowed_it(
    team: Group, video: Video, serve: Serve
) -> None:
    receiver, url = serve()
    target(team, url, allow_private=False)
    queue_event("video.completed", video=video)
    outbound.deliver_due()
    row = OutboundDelivery.objects.get()
    assert row.state == "failed" and row.attempts == 1  # never retried: it cannot change
    assert row.last_error == (
        "Not sent: 127.0.0.1 resolves to a private (loopback) address (127.0.0.1)."
    )
    assert receiver.received == []  # not even connected to
    assert outbound.private_refusal(url).startswith("127.0.0.1 resolves to a private")
    assert outbound.url_refusal("file:///etc/passwd") == (
        "Only http:// and https:// addresses can receive notifications."
    )


def test_a_redirect_is_not_followed(team: Group, video: Video, serve: Serve) -> None:
    receiver, url = serve(302)
    target(team, url)
    queue_event("video.completed", video=video)
    outbound.deliver_due()
    row = OutboundDelivery.objects.get()
    assert row.state == "pending" and row.last_status == 302
    assert "redirects are not followed" in row.last_error
    assert len(receiver.received) == 1


def test_a_trickling_receiver_is_cut_off_at_the_deadline(
    team: Group, video: Video, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "DEADLINE", 1.0)
    stop = threading.Event()

    class Trickle(StandInHandler):
        def do_POST(self) -> None:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.2):  # a header at a time: each read is "on time"
                try:
                    self.wfile.write(b"X-Pad: x\r\n")
                    self.wfile.flush()
                except OSError:
                    return

    with serving(Trickle) as base:
        target(team, base.removesuffix("/v1") + "/hook")
        queue_event("video.completed", video=video)
        began = time.monotonic()
        outbound.deliver_due()
        took = time.monotonic() - began
        stop.set()
    row = OutboundDelivery.objects.get()
    assert row.state == "pending" and row.last_error == "No answer within 1 s."
    assert took < 3


@pytest.mark.django_db(transaction=True)  # the command closes stale connections, as it runs
def test_the_command_sends_what_is_due(team: Group, video: Video, serve: Serve) -> None:
    receiver, url = serve()
    target(team, url)
    queue_event("video.completed", video=video)
    call_command("deliver_notifications", "--once", stdout=open("/dev/null", "w"))
    assert OutboundDelivery.objects.get().state == "sent"
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_one_delivery_twice(
    alice: User, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = Group.objects.create(name="Studio")
    alice.groups.add(group)
    provider = Provider.objects.create(name="P", base_url="http://127.0.0.1:9/v1")
    clip = Video.objects.create(owner=alice, provider=provider, prompt="p", status="completed")
    receiver, url = serve()
    target(group, url)
    for _ in range(12):
        queue_event("video.completed", video=clip)
    # Both workers read the same due rows before either writes: the race the lease must win.
    both_read = threading.Barrier(2, timeout=10)
    read_due = outbound._due

    def due_then_wait(now: Any, limit: int) -> Any:
        rows = read_due(now, limit)
        try:
            both_read.wait()
        except threading.BrokenBarrierError:  # the other worker has finished: nothing to race
            pass
        return rows

    monkeypatch.setattr(outbound, "_due", due_then_wait)
    claimed: list[list[int]] = [[], []]

    def work(n: int) -> None:
        try:
            while claims := outbound.claim_due(limit=3):
                claimed[n] += [c.delivery_id for c in claims]
                for claim in claims:
                    outbound.deliver_claimed(claim)
        finally:
            both_read.abort()  # done: the other worker no longer waits for this one
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert not set(claimed[0]) & set(claimed[1])
    assert OutboundDelivery.objects.filter(state="sent").count() == 12


def test_a_finished_job_queues_its_event_and_the_tracker_sends_nothing(
    alice: User, team: Group, provider: Provider, simulator: Simulator, serve: Serve
) -> None:
    import uuid

    from jobs.services.submit import submit_create

    receiver, url = serve()
    target(team, url, events=["video.completed"])
    made = submit_create(
        user=alice, provider=provider, prompt="A kite", model="sora-2", size="1280x720",
        seconds="4", key=uuid.uuid4(),
    )  # fmt: skip
    drive(lambda: Video.objects.get(pk=made.pk).status == "completed")
    row = OutboundDelivery.objects.get()
    assert (row.event, row.state, row.payload["data"]["video"]["id"]) == (
        "video.completed",
        "pending",
        made.pk,
    )
    assert receiver.received == []  # only the notification worker does HTTP
