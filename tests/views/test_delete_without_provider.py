"""Delete when the provider cannot: the video goes from here (files too), and the words say
that the provider keeps its copy until it expires. Capability off, a 405 (LiteLLM, new-api:
the simulator's no_delete quirk), and a 404 that is not the API's own."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import Provider, Video
from jobs.services.manage import delete_video
from tests.conftest import Simulator, StandInHandler, drive, serving
from tests.helpers import import_by_id, stand_in_row


def archived_video(provider: Provider, simulator: Simulator, owner: Any) -> tuple[Video, str]:
    remote = simulator.seed(1)[0]
    video, _ = import_by_id(provider=provider, video_id=remote["id"])
    Video.objects.filter(pk=video.pk).update(owner=owner)
    drive(lambda: Video.objects.get(pk=video.pk).asset_state == Video.Assets.ARCHIVED)
    return Video.objects.select_related("provider").get(pk=video.pk), remote["id"]


def files_of(video: Video, media_root: Path) -> list[Path]:
    names = [video.video_file.name, video.thumbnail_file.name, video.spritesheet_file.name]
    return [Path(media_root, str(name)) for name in names]


def said(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_without_the_capability_it_is_removed_here_and_nothing_is_sent(
    provider: Provider, simulator: Simulator, alice: Any, alice_client: Client, media_root: Path
) -> None:
    video, remote_id = archived_video(provider, simulator, alice)
    Provider.objects.filter(pk=provider.pk).update(can_delete=False)
    files = files_of(video, media_root)
    assert all(path.is_file() for path in files)
    page = alice_client.get(reverse("jobs:delete-confirm", args=[video.pk])).content.decode()
    assert "cannot delete its copies, so the provider keeps its copy until it expires" in page
    r = alice_client.post(reverse("jobs:delete", args=[video.pk]))
    assert r.status_code == 302 and not Video.objects.filter(pk=video.pk).exists()
    assert not any(path.exists() for path in files)
    assert simulator.stats()["per_video"][remote_id]["delete"] == 0
    when = f"{timezone.localtime(video.expires_at):%Y-%m-%d %H:%M %Z}"
    assert said(r) == [
        f"Deleted #{video.pk} here. “Sim” cannot delete its copies, so the provider keeps its "
        f"copy until it expires ({when})."
    ]


def test_a_provider_that_answers_405_keeps_its_copy_and_ours_goes(
    provider: Provider, simulator: Simulator, alice: Any, alice_client: Client, media_root: Path
) -> None:
    simulator.configure(quirks=["no_delete"])
    video, remote_id = archived_video(provider, simulator, alice)
    files = files_of(video, media_root)
    r = alice_client.post(reverse("jobs:delete", args=[video.pk]))
    assert r.status_code == 302 and not Video.objects.filter(pk=video.pk).exists()
    assert not any(path.exists() for path in files)
    assert simulator.stats()["per_video"][remote_id]["delete"] == 1  # asked, and refused
    (words,) = said(r)
    assert words.startswith(f"Deleted #{video.pk} here. “Sim” cannot delete its copies")
    assert "keeps its copy until it expires (" in words
    assert simulator.retrieves(remote_id) >= 1  # still there at the provider
    assert provider.client().retrieve(remote_id).id == remote_id


def test_the_owner_deleting_at_a_provider_that_can_is_told_so(
    provider: Provider, simulator: Simulator, alice: Any, alice_client: Client
) -> None:
    video, remote_id = archived_video(provider, simulator, alice)
    r = alice_client.post(reverse("jobs:delete", args=[video.pk]))
    assert said(r) == [f"Deleted #{video.pk}, here and at the provider."]
    assert simulator.stats()["per_video"][remote_id]["delete"] == 1


class NoDeleteRoute(StandInHandler):
    """A gateway whose router has no DELETE: a bare 404 page, not the API's error envelope."""

    def do_DELETE(self) -> None:
        self.reply(404, "text/plain", b"404 page not found")


class RefusesDelete(StandInHandler):
    def do_DELETE(self) -> None:
        body = {"error": {"message": "Video is locked", "type": "invalid_request_error"}}
        self.reply(400, "application/json", json.dumps(body).encode())


def local_row(base_url: str, owner: Any, **fields: Any) -> Video:
    """An archived job at a gateway that cannot delete."""
    return stand_in_row(
        base_url,
        owner,
        provider_name="Gateway",
        video_id="task_1",
        prompt="a kite",
        size="720x1280",
        submission=Video.Submission.SUBMITTED,
        asset_state=Video.Assets.ARCHIVED,
        **({"expires_at": None, "next_poll_at": None} | fields),
    )


def test_a_404_without_the_api_envelope_means_no_delete_route(db: None, alice: Any) -> None:
    with serving(NoDeleteRoute) as url:
        video = local_row(url, alice)
        pk = video.pk
        words = delete_video(video=video, user=alice)
    assert not Video.objects.filter(pk=pk).exists()
    assert words == (
        f"Deleted #{pk} here. “Gateway” cannot delete its copies, so the provider keeps "
        "its copy until it expires."
    )


def test_a_copy_that_already_expired_is_said_so(db: None, alice: Any) -> None:
    with serving(NoDeleteRoute) as url:
        gone = timezone.now() - timedelta(minutes=5)
        video = local_row(url, alice, expires_at=gone)
        words = delete_video(video=video, user=alice)
    assert words.endswith(f"its copy expired at {timezone.localtime(gone):%Y-%m-%d %H:%M %Z}.")


def test_any_other_refusal_keeps_the_video_and_says_why(db: None, alice: Any) -> None:
    from django.core.exceptions import ValidationError

    with serving(RefusesDelete) as url:
        video = local_row(url, alice)
        with pytest.raises(ValidationError, match="Video is locked"):
            delete_video(video=video, user=alice)
    assert Video.objects.filter(pk=video.pk).exists()
