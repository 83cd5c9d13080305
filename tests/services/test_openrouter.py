"""A provider in OpenRouter's dialect: videos made, tracked, archived and charged through it, and
its webhooks (`X-OpenRouter-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>,<raw body>">`)
verified, deduplicated by `<job id>-<status>`, and never trusted beyond the job id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import Charge, Provider, Video, WebhookDelivery
from jobs.services.submit import submit_create
from tests.conftest import Delivery, Simulator, drive

SECRET_ENV = "REMIX_TEST_OPENROUTER_SECRET"
SECRET = "or-test-secret"


def make(
    user: Any, provider: Provider, model: str = "openai/sora-2", size: str = "1280x720"
) -> Video:
    """A 4 s video created through the services on `provider`, once the provider named it."""
    video = submit_create(
        user=user,
        provider=provider,
        prompt="a fox",
        model=model,
        size=size,
        seconds="4",
        key=uuid.uuid4(),
    )
    drive(lambda: Video.objects.get(pk=video.pk).video_id is not None)
    video.refresh_from_db()
    return video


def test_a_video_is_tracked_to_completed_archived_and_charged_what_openrouter_says(
    alice: Any, openrouter_provider: Provider, openrouter_simulator: Simulator
) -> None:
    video = make(alice, openrouter_provider, model="openai/sora-2-pro", size="1280x720")
    assert video.video_id is not None and video.video_id.startswith("job-")

    drive(lambda: Video.objects.get(pk=video.pk).asset_state == Video.Assets.ARCHIVED)

    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED
    assert video.content_url.endswith(f"/videos/{video.video_id}/content?index=0")
    charge = Charge.objects.get(video=video)
    # The catalog has OpenRouter's price per size ($0.30 a second at 720p, filled from its
    # models endpoint), and usage.cost then confirms it as the provider's own figure.
    assert video.cost_estimate == Decimal("1.2")
    assert charge.basis == Charge.Basis.PROVIDER and charge.amount == Decimal("1.2")
    stats = openrouter_simulator.stats()
    assert stats["per_video"][video.video_id]["content"] == 1  # the MP4 once, no variants


# --- webhooks --------------------------------------------------------------------------------


@pytest.fixture
def hooked(
    openrouter_provider: Provider,
    openrouter_simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    webhook_receiver: tuple[str, list[Delivery]],
) -> Provider:
    """Webhooks on at both ends: the simulator signs with the secret the provider names."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    openrouter_provider.webhooks_enabled = True
    openrouter_provider.webhook_secret_env = SECRET_ENV
    openrouter_provider.save()
    url, _ = webhook_receiver
    openrouter_simulator.configure(webhook_url=f"{url}/hook", webhook_secret=SECRET)
    return openrouter_provider


def delivered(alice: Any, provider: Provider, got: list[Delivery]) -> tuple[Video, Delivery]:
    """A video, and the real delivery the simulator sent when it completed."""
    video = make(alice, provider)
    deadline = time.monotonic() + 15
    while not got:
        assert time.monotonic() < deadline, "no delivery"
        time.sleep(0.05)
    return video, got[0]


def post(client: Client, provider: Provider, body: bytes, headers: dict[str, str]) -> Any:
    wanted = ("x-openrouter-signature", "x-openrouter-idempotency-key")
    return client.post(
        reverse("jobs:webhook", args=[provider.pk]),
        data=body,
        content_type="application/json",
        headers={name: value for name, value in headers.items() if name in wanted},
    )


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"{stamp},".encode() + body, hashlib.sha256).hexdigest()
    return {"x-openrouter-signature": f"t={stamp},v1={digest}"}


def test_a_real_delivery_is_verified_and_the_job_reread(
    client: Client,
    hooked: Provider,
    alice: Any,
    openrouter_simulator: Simulator,
    webhook_receiver: tuple[str, list[Delivery]],
) -> None:
    video, (_, headers, body) = delivered(alice, hooked, webhook_receiver[1])
    assert video.video_id is not None
    before = openrouter_simulator.retrieves(video.video_id)

    r = post(client, hooked, body, headers)

    assert r.status_code == 200 and r.content == b"ok"
    assert openrouter_simulator.retrieves(video.video_id) == before + 1
    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED
    delivery = WebhookDelivery.objects.get(provider=hooked)
    assert delivery.webhook_id == f"{video.video_id}-completed"
    assert delivery.event_type == "video.generation.completed"


def test_a_replay_is_acknowledged_and_ignored_whatever_its_key_header(
    client: Client,
    hooked: Provider,
    alice: Any,
    openrouter_simulator: Simulator,
    webhook_receiver: tuple[str, list[Delivery]],
) -> None:
    video, (_, headers, body) = delivered(alice, hooked, webhook_receiver[1])
    assert video.video_id is not None
    assert post(client, hooked, body, headers).content == b"ok"
    after_first = openrouter_simulator.retrieves(video.video_id)

    again = post(client, hooked, body, headers)
    # The key header is not signed: a replay with another one is still the same delivery.
    renamed = post(client, hooked, body, {**headers, "x-openrouter-idempotency-key": "other"})

    assert again.content == renamed.content == b"duplicate"
    assert openrouter_simulator.retrieves(video.video_id) == after_first
    assert WebhookDelivery.objects.filter(provider=hooked).count() == 1


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ("secret", "does not match"),
        ("body", "does not match"),
        ("stale", "more than five minutes"),
        ("future", "more than five minutes"),
        ("no header", "missing or not of the form"),
        ("no timestamp", "missing or not of the form"),
    ],
)
def test_a_forged_stale_or_unsigned_delivery_is_refused_in_words(
    client: Client,
    hooked: Provider,
    alice: Any,
    openrouter_simulator: Simulator,
    webhook_receiver: tuple[str, list[Delivery]],
    tamper: str,
    words: str,
) -> None:
    video, (_, headers, body) = delivered(alice, hooked, webhook_receiver[1])
    assert video.video_id is not None
    before = openrouter_simulator.retrieves(video.video_id)
    only_v1 = signed(body)["x-openrouter-signature"].split(",", 1)[1]
    forged = {
        "secret": (body, signed(body, secret="not-the-secret")),
        "body": (body.replace(b'"completed"', b'"failed"', 1), headers),
        "stale": (body, signed(body, at=time.time() - 330)),
        "future": (body, signed(body, at=time.time() + 330)),
        "no header": (body, {}),
        "no timestamp": (body, {"x-openrouter-signature": only_v1}),
    }[tamper]

    r = post(client, hooked, *forged)

    assert r.status_code == 400
    assert r.content.decode().startswith("Signature check failed") and words in r.content.decode()
    assert openrouter_simulator.retrieves(video.video_id) == before
    assert not WebhookDelivery.objects.exists()


def test_a_delivery_signed_four_minutes_ago_is_still_accepted(
    client: Client,
    hooked: Provider,
    alice: Any,
    webhook_receiver: tuple[str, list[Delivery]],
) -> None:
    _, (_, _, body) = delivered(alice, hooked, webhook_receiver[1])
    r = post(client, hooked, body, signed(body, at=time.time() - 240))
    assert r.status_code == 200 and r.content == b"ok"


def test_standard_webhooks_headers_do_not_pass_for_an_openrouter_provider(
    client: Client, hooked: Provider
) -> None:
    body = json.dumps({"type": "video.completed", "data": {"id": "job-x"}}).encode()
    r = client.post(
        reverse("jobs:webhook", args=[hooked.pk]),
        data=body,
        content_type="application/json",
        headers={"webhook-id": "wh_1", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
    )
    assert r.status_code == 400 and b"X-OpenRouter-Signature" in r.content
