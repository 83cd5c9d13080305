"""queue_event: one row per enabled, interested target of the owner's teams; no HTTP."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

from jobs.models import NotificationTarget, OutboundDelivery, Provider, Video
from jobs.outbound import queue_event


def a_video(owner: User) -> Video:
    provider = Provider.objects.create(name="P", base_url="http://127.0.0.1:9/v1")
    return Video.objects.create(owner=owner, provider=provider, prompt="A red kite over the dunes")


def test_rows_for_interested_targets_only(alice: User, bob: User) -> None:
    team = Group.objects.create(name="Studio")
    other = Group.objects.create(name="Elsewhere")
    alice.groups.add(team)
    bob.groups.add(other)
    every = NotificationTarget.objects.create(team=team, kind="slack", url="https://x.test/a")
    NotificationTarget.objects.create(
        team=team, kind="webhook", url="https://x.test/b", events=["video.failed"]
    )
    NotificationTarget.objects.create(
        team=team, kind="webhook", url="https://x.test/c", enabled=False
    )
    NotificationTarget.objects.create(team=other, kind="slack", url="https://x.test/d")
    video = a_video(alice)

    assert queue_event("video.completed", video=video, actor=bob) == 1
    row = OutboundDelivery.objects.get()
    assert row.target == every and row.state == "pending" and row.next_attempt_at is not None
    assert row.payload["type"] == "video.completed"
    assert row.payload["data"]["video"]["id"] == video.pk
    assert row.payload["data"]["actor"] == "bob"
    assert "A red kite" in row.payload["data"]["text"]
    assert queue_event("video.failed", video=video) == 2


def test_nobody_listening_queues_nothing(alice: User) -> None:
    video = a_video(alice)
    assert queue_event("video.approved", video=video) == 0
    assert not OutboundDelivery.objects.exists()
