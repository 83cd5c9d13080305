"""Several providers, their capabilities in the UI, and the admin's connection check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import messages
from django.core.exceptions import ValidationError

from jobs.models import Provider, Video
from jobs.services.demo import seed_catalog
from jobs.services.manage import check_provider
from jobs.services.submit import submit_create, submit_remix
from jobs.tracker import advance_video
from tests.conftest import (
    Simulator,
    StandInHandler,
    serving,
    start_simulator,
    stop_simulator,
)


@pytest.fixture
def html_404_server() -> Iterator[str]:
    """A web server that is not a Videos API: every path is an HTML 404 page."""

    class Handler(StandInHandler):
        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            body = b"<!doctype html><title>Not Found</title><h1>Not Found</h1>"
            self.reply(404, "text/html", body)

    with serving(Handler) as base_url:
        yield base_url


@pytest.fixture
def locked_simulator(tmp_path: Path) -> Iterator[Simulator]:
    """A second simulator that only accepts the key "k" (the tests send sk-test)."""
    sim = start_simulator(tmp_path, "--api-key", "k")
    yield sim
    stop_simulator(sim)


def other(name: str, base_url: str, **kw: Any) -> Provider:
    return Provider.objects.create(
        name=name, base_url=base_url, api_key_env=kw.pop("api_key_env", "SIMULATOR_API_KEY"), **kw
    )


class TestCheckConnection:
    def test_the_simulator_answers_and_the_key_is_accepted(self, provider) -> None:
        level, text = check_provider(provider=provider)
        assert level == messages.SUCCESS
        assert "the Videos API answers and the key is accepted" in text and "sora-2-pro" in text

    def test_a_wrong_key_is_reported_as_refused(self, db, locked_simulator) -> None:
        provider = other("Locked", locked_simulator.base_url)
        level, text = check_provider(provider=provider)
        assert level == messages.ERROR and "the key was refused" in text
        assert "sk-test" not in text  # the key itself never appears in messages

    def test_a_server_without_the_videos_api_is_explained(self, db, html_404_server) -> None:
        provider = other("Somewhere", html_404_server)
        level, text = check_provider(provider=provider)
        assert level == messages.ERROR
        assert "does not offer the Videos API" in text and "2026-09-24" in text

    def test_a_missing_environment_variable_is_named(self, db, simulator, monkeypatch) -> None:
        monkeypatch.delenv("NOT_SET_FOR_THIS_TEST", raising=False)
        provider = other(
            "No key", simulator.base_url, api_key_env="PROVIDER_KEY_NOT_SET_FOR_THIS_TEST"
        )
        level, text = check_provider(provider=provider)
        assert level == messages.ERROR
        assert "NOT_SET_FOR_THIS_TEST is not set" in text
        assert simulator.stats()["requests"].get("GET /v1/videos", 0) == 0  # nothing was sent

    def test_the_admin_action_reports_each_provider(
        self, client, staff, provider, html_404_server
    ) -> None:
        broken = other("Somewhere", html_404_server)
        client.force_login(staff)
        r = client.post(
            "/admin/jobs/provider/",
            {"action": "check_connection", "_selected_action": [provider.pk, broken.pk]},
            follow=True,
        )
        body = r.content.decode()
        assert "Sim: the Videos API answers" in body
        assert "Somewhere: this provider does not offer the Videos API" in body


class TestCapabilities:
    def test_remix_is_shown_disabled_with_a_reason(self, alice_client, completed, provider) -> None:
        assert b'href="/videos/%d/remix/"' % completed.pk in alice_client.get("/").content
        provider.can_remix = False
        provider.save()
        for url in ("/", completed.get_absolute_url()):
            body = alice_client.get(url).content.decode()
            assert f'href="/videos/{completed.pk}/remix/"' not in body, url
            assert 'title="This provider does not offer remix"' in body, url
        assert f'href="/videos/{completed.pk}/batch/"' not in body
        r = alice_client.post(
            f"/videos/{completed.pk}/batch/",
            {"prompts": "x", "variations": 1, "key": str(uuid.uuid4())},
        )
        assert r.status_code == 400 and b"does not offer remix" in r.content

    def test_create_offers_only_providers_that_can_create(
        self, alice_client, alice, provider, simulator
    ) -> None:
        second = other("Second", simulator.base_url)
        seed_catalog(second)
        no_create = other("Remix only", simulator.base_url, can_create=False)
        seed_catalog(no_create)
        other("Switched off", simulator.base_url, enabled=False)
        r = alice_client.get("/videos/new/")
        offered = {str(p.pk): p.name for p in r.context["form"].fields["provider"].queryset}
        assert offered == {str(provider.pk): "Sim", str(second.pk): "Second"}
        assert set(r.context["catalog"]) == set(offered)
        assert "“Remix only” is not listed: this provider does not offer creating videos" in (
            r.content.decode()
        )
        r = alice_client.post(
            "/videos/new/",
            {
                "key": str(uuid.uuid4()),
                "provider": no_create.pk,
                "model": "sora-2",
                "size": "1280x720",
                "seconds": "4",
                "prompt": "p",
            },
        )
        assert r.status_code == 400 and Video.objects.count() == 0

    def test_a_job_goes_to_the_provider_it_was_made_for(
        self, alice, provider, locked_simulator, simulator
    ) -> None:
        second = other("Locked", locked_simulator.base_url)
        seed_catalog(second)
        video = submit_create(
            user=alice, provider=second, prompt="p", model="sora-2", size="1280x720",
            seconds="4", key=uuid.uuid4(),
        )  # fmt: skip
        advance_video(video_id=video.pk)
        video.refresh_from_db()
        # The locked simulator refused our key: the job is rejected there, the default one saw
        # nothing.
        assert video.submission == Video.Submission.REJECTED
        assert simulator.stats()["jobs_created"] == 0

    def test_a_disabled_provider_refuses_new_work(self, alice, completed, provider) -> None:
        provider.enabled = False
        provider.save()
        completed.refresh_from_db()
        with pytest.raises(ValidationError, match="disabled"):
            submit_remix(user=alice, source=completed, prompt="p", key=uuid.uuid4())


def test_a_provider_keeps_one_client_until_its_url_or_key_changes(provider, monkeypatch) -> None:
    # One connection pool per provider per process: a status read reuses a warm connection.
    client = provider.client()
    assert provider.client() is client
    monkeypatch.setenv(provider.api_key_env, "sk-rotated")
    rotated = provider.client()
    assert rotated is not client
    provider.base_url = provider.base_url.replace("127.0.0.1", "localhost")
    assert provider.client() is not rotated
