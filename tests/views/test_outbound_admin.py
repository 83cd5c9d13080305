"""Staff set up the teams' notification targets in the admin; deliveries are read-only there."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from jobs.models import NotificationTarget, OutboundDelivery

ADD = reverse("admin:jobs_notificationtarget_add")


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    client.force_login(staff)
    return client


@pytest.fixture
def team(db: None) -> Group:
    return Group.objects.create(name="Studio")


def add(client: Client, team: Group, url: str, **extra: str | list[str]) -> str:
    data = {"team": team.pk, "kind": "webhook", "url": url, "enabled": "on", **extra}
    r = client.post(ADD, data)
    if r.status_code == 302:
        return ""
    return " ".join(r.context["adminform"].form.errors.get("url", []))


def test_a_private_address_needs_allow_private(staff_client: Client, team: Group) -> None:
    said = add(staff_client, team, "http://127.0.0.1:9000/hook")
    assert said == (
        "127.0.0.1 resolves to a private (loopback) address (127.0.0.1). Only public addresses "
        "are allowed unless “allow private” is ticked."
    )
    assert add(staff_client, team, "http://10.1.2.3/hook").startswith(
        "10.1.2.3 resolves to a private"
    )
    assert add(staff_client, team, "http://169.254.169.254/").startswith(
        "169.254.169.254 resolves to a link-local address"
    )
    assert not NotificationTarget.objects.exists()
    assert add(staff_client, team, "http://127.0.0.1:9000/hook", allow_private="on") == ""
    assert NotificationTarget.objects.get().allow_private is True


def test_only_http_targets_and_the_events_chosen(staff_client: Client, team: Group) -> None:
    assert add(staff_client, team, "ftp://93.184.216.34/x") in (
        "Only http:// and https:// addresses can receive notifications.",
        "Enter a valid URL.",  # the URL field itself may refuse the scheme first
    )
    assert (
        add(
            staff_client,
            team,
            "https://93.184.216.34/hook",
            events=["video.failed", "video.approved"],
        )
        == ""
    )
    target = NotificationTarget.objects.get()
    assert target.events == ["video.failed", "video.approved"]
    assert target.secret.startswith("whsec_")
    page = staff_client.get(reverse("admin:jobs_notificationtarget_change", args=[target.pk]))
    assert target.secret in page.content.decode()  # shown, for the receiving team


def test_deliveries_are_listed_read_only_and_can_be_tried_again(
    staff_client: Client, team: Group
) -> None:
    target = NotificationTarget.objects.create(team=team, kind="slack", url="https://x.test/")
    row = OutboundDelivery.objects.create(
        target=target, event="video.failed", message_id="msg_1", payload={}, state="failed",
        attempts=6, last_error="Gave up after 6 attempts.",
    )  # fmt: skip
    listing = reverse("admin:jobs_outbounddelivery_changelist")
    for query in ("", "?state__exact=failed", "?event=video.failed", "?target__kind=slack"):
        r = staff_client.get(listing + query)
        assert r.status_code == 200 and "Gave up after 6 attempts." in r.content.decode(), query
    row.tries.create(number=1, status=503, error="The target answered HTTP 503: busy")
    change = reverse("admin:jobs_outbounddelivery_change", args=[row.pk])
    page = staff_client.get(change).content.decode()
    assert 'name="state"' not in page
    assert "The target answered HTTP 503: busy" in page  # each try, in the change page
    assert staff_client.get(reverse("admin:jobs_outbounddelivery_add")).status_code == 403
    r = staff_client.post(listing, {"action": "send_again", "_selected_action": [row.pk]})
    assert r.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.attempts, row.next_attempt_at is not None) == ("pending", 0, True)


def test_a_user_cannot_reach_the_targets(client: Client, alice: User) -> None:
    client.force_login(alice)
    r = client.get(reverse("admin:jobs_notificationtarget_changelist"))
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
