"""The audit log: an entry for each audited action, a staff-only page with filters, the admin."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import AuditEvent, Budget, Provider, Video
from jobs.services.audit import record
from jobs.services.manage import cancel_video, delete_video
from jobs.services.submit import retry_video, submit_create


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    client.force_login(staff)
    return client


def actions() -> list[tuple[str, str, str]]:
    return [
        (e.actor.get_username() if e.actor else "system", e.action, e.target_type)
        for e in AuditEvent.objects.order_by("pk")
    ]


def test_submit_retry_cancel_and_delete_are_recorded(alice: User, provider: Provider) -> None:
    made = submit_create(
        user=alice, provider=provider, prompt="a heron", model="sora-2", size="1280x720",
        seconds="4", key=uuid.uuid4(),
    )  # fmt: skip
    assert cancel_video(video_id=made.pk, user=alice).startswith("Cancelled")  # never sent
    failed = Video.objects.create(
        owner=alice, provider=provider, prompt="a crane", model="sora-2", size="1280x720",
        seconds="4", status="failed", submission="rejected",
    )  # fmt: skip
    again = retry_video(user=alice, video=failed, key=uuid.uuid4())
    delete_video(video=Video.objects.get(pk=made.pk), user=alice)
    assert actions() == [
        ("alice", "submitted", "video"),
        ("alice", "cancelled", "video"),
        ("alice", "retried", "video"),
        ("alice", "deleted", "video"),
    ]
    retried = AuditEvent.objects.get(action="retried")
    assert retried.target_id == str(again.pk)
    deleted = AuditEvent.objects.get(action="deleted")
    assert deleted.target_id == str(made.pk) and deleted.detail["prompt"] == "a heron"


def test_a_refused_action_leaves_no_entry(alice: User, bob: User, provider: Provider) -> None:
    from django.core.exceptions import PermissionDenied

    failed = Video.objects.create(
        owner=alice, provider=provider, prompt="x", status="failed", submission="rejected"
    )
    with pytest.raises(PermissionDenied):
        delete_video(video=failed, user=bob)
    assert not AuditEvent.objects.exists()


def test_budget_changes_in_the_admin_are_recorded(staff_client: Client, alice: User) -> None:
    r = staff_client.post(
        reverse("admin:jobs_budget_add"), {"user": alice.pk, "monthly_limit": "5.00"}
    )
    assert r.status_code == 302, r.content
    budget = Budget.objects.get()
    r = staff_client.post(
        reverse("admin:jobs_budget_changelist"),
        {
            "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000", "form-0-id": budget.pk, "form-0-monthly_limit": "7.50",
            "_save": "Save",
        },
    )  # fmt: skip
    assert r.status_code == 302
    assert Budget.objects.get().monthly_limit == Decimal("7.50")
    added, changed = AuditEvent.objects.filter(action="budget_changed").order_by("pk")
    assert added.actor is not None and added.actor.get_username() == "staff"
    assert added.detail["added"] is True
    assert changed.detail == {"added": False, "fields": {"monthly_limit": ["5.00", "7.50"]}}
    staff_client.post(reverse("admin:jobs_budget_delete", args=[budget.pk]), {"post": "yes"})
    assert AuditEvent.objects.filter(action="budget_changed", detail__deleted=True).exists()


def admin_form_data(response: Any) -> dict[str, Any]:
    """What the admin change page would post back unchanged (its form and inlines)."""
    data: dict[str, Any] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        forms += formset.forms
    for form in forms:
        for name in form.fields:
            bound = form[name]
            value = bound.value()
            names = [bound.html_name]
            if bound.field.show_hidden_initial:  # a callable default: the browser posts both
                names.append(bound.html_initial_name)
            for html_name in names:
                if value is True:
                    data[html_name] = "on"
                elif value not in (None, False):
                    data[html_name] = value
    return data


def test_provider_changes_in_the_admin_are_recorded(
    staff_client: Client, provider: Provider
) -> None:
    url = reverse("admin:jobs_provider_change", args=[provider.pk])
    data = admin_form_data(staff_client.get(url))
    data["name"] = "Renamed simulator"
    r = staff_client.post(url, data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    entry = AuditEvent.objects.get(action="provider_changed")
    assert entry.detail["fields"] == {"name": ["Sim", "Renamed simulator"]}
    assert entry.target_repr == "Renamed simulator"
    staff_client.post(url, data)  # nothing changed: nothing recorded
    assert AuditEvent.objects.filter(action="provider_changed").count() == 1


def test_the_audit_page_is_for_staff_only(client: Client, alice: User) -> None:
    assert client.get("/audit/").status_code == 302  # to the log-in page
    client.force_login(alice)
    assert client.get("/audit/").status_code == 403


def test_the_audit_page_filters_and_pages(
    staff_client: Client, alice: User, bob: User, provider: Provider
) -> None:
    video = Video.objects.create(owner=alice, provider=provider, prompt="p", video_id="vid_kite")
    record(alice, "submitted", video)
    record(bob, "deleted", video)
    old = record(None, "budget_changed", provider)
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=40))

    def rows(query: str) -> str:
        r = staff_client.get("/audit/" + query)
        assert r.status_code == 200, query
        return r.content.decode()

    page = rows("")
    assert "3 entries" in page and "system" in page
    assert "1 entry" in rows("?actor=bob") and "Deleted" in rows("?actor=bob")
    assert "1 entry" in rows("?actor=system")
    assert "1 entry" in rows("?action=submitted")
    about_it = AuditEvent.objects.filter(target_id=str(video.pk)).count()
    assert f"{about_it} entries" in rows(f"?q=%23{video.pk}")
    assert "2 entries" in rows("?q=kite")
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert "2 entries" in rows(f"?since={since}")
    until = (timezone.now() - timedelta(days=30)).date().isoformat()
    assert "1 entry" in rows(f"?until={until}")
    bad = staff_client.get("/audit/?since=2026-05-02&until=2026-05-01&action=nope")
    assert bad.status_code == 400
    assert "The end date is before the start date." in bad.content.decode()

    for n in range(60):
        record(alice, "submitted", video, n=n)
    first = rows("?action=submitted")
    assert "Page 1 of 2" in first and "action=submitted&amp;page=2" in first
    assert "Page 2 of 2" in rows("?action=submitted&page=2")


def test_the_admin_shows_the_log_read_only(staff_client: Client, alice: User) -> None:
    entry = record(alice, "submitted", alice)
    assert staff_client.get(reverse("admin:jobs_auditevent_changelist")).status_code == 200
    assert (
        staff_client.get(reverse("admin:jobs_auditevent_change", args=[entry.pk])).status_code
        == 200
    )
    assert staff_client.get(reverse("admin:jobs_auditevent_add")).status_code == 403
    r = staff_client.post(reverse("admin:jobs_auditevent_delete", args=[entry.pk]), {"post": "yes"})
    assert r.status_code == 403 and AuditEvent.objects.filter(pk=entry.pk).exists()
