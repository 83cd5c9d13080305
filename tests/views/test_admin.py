"""Admin pages render for staff, provider-owned fields are read-only, actions go via services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from jobs.models import Video


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    client.force_login(staff)
    return client


def test_video_pages_render(staff_client, completed) -> None:
    for url in [
        reverse("admin:jobs_video_changelist"),
        reverse("admin:jobs_video_changelist") + "?status__exact=completed&q=a",
        reverse("admin:jobs_video_change", args=[completed.pk]),
    ]:
        assert staff_client.get(url).status_code == 200, url


def test_provider_pages_render_without_the_key(staff_client, provider, monkeypatch) -> None:
    monkeypatch.setenv("SIMULATOR_API_KEY", "sk-very-secret-value-123")
    for url in [
        reverse("admin:jobs_provider_changelist"),
        reverse("admin:jobs_provider_change", args=[provider.pk]),
    ]:
        r = staff_client.get(url)
        assert r.status_code == 200 and b"sk-very-secret-value-123" not in r.content


def test_provider_owned_fields_are_read_only(staff_client, completed) -> None:
    r = staff_client.get(reverse("admin:jobs_video_change", args=[completed.pk]))
    body = r.content.decode()
    assert 'name="status"' not in body and 'name="video_id"' not in body
    assert 'name="prompt"' not in body and "history" in body.lower()


def test_refresh_now_action_makes_it_due(staff_client, completed) -> None:
    Video.objects.filter(pk=completed.pk).update(status="in_progress", next_poll_at=None)
    r = staff_client.post(
        reverse("admin:jobs_video_changelist"),
        {"action": "refresh_now", "_selected_action": [completed.pk]},
    )
    assert r.status_code == 302
    assert Video.objects.get(pk=completed.pk).next_poll_at is not None


def test_check_connection_reports_in_plain_words(staff_client, provider) -> None:
    r = staff_client.post(
        reverse("admin:jobs_provider_changelist"),
        {"action": "check_connection", "_selected_action": [provider.pk]},
        follow=True,
    )
    assert b"the Videos API answers and the key is accepted" in r.content
