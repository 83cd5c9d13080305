"""Standard Webhooks from the provider: verified, deduplicated, and never trusted for state.

A delivery only says "look at video X now": the job is re-read from the provider, so a forged,
stale or replayed delivery can at worst cause one extra GET. Polling stays as the fallback,
slowed down to POLL_WEBHOOK_SECONDS for providers that send webhooks.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from jobs.models import Provider, Video, WebhookDelivery
from jobs.services.submit import submit_remix
from tests.conftest import Simulator, drive

SECRET_ENV = "REMIX_TEST_WEBHOOK_SECRET"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_secret()
    monkeypatch.setenv(SECRET_ENV, value)
    return value


@pytest.fixture
def hooked(provider: Provider, secret: str) -> Provider:
    """The simulator provider, with webhooks switched on and its secret in the environment."""
    provider.webhooks_enabled = True
    provider.webhook_secret_env = SECRET_ENV
    provider.save()
    return provider


def signed(
    secret: str,
    video_id: str,
    *,
    event: str = "video.completed",
    webhook_id: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery shaped like the simulator's (and OpenAI's): only `data.id` matters to us."""
    webhook_id = webhook_id or f"wh_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "created_at": int(at.timestamp()),
            "type": event,
            "data": {"id": video_id},
        },
        separators=(",", ":"),
    )
    signer = Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(webhook_id, at, body),
    }
    return body.encode(), headers


def post(client: Client, provider: Provider, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        reverse("jobs:webhook", args=[provider.pk]),
        data=body,
        content_type="application/json",
        headers=headers,
    )


def retrieves(simulator: Simulator, video_id: str) -> int:
    return int(simulator.stats()["per_video"].get(video_id, {}).get("retrieve", 0))


def provider_status(simulator: Simulator, video_id: str) -> str:
    """The provider's own view, read through the list so no per-video GET is counted."""
    r = requests.get(
        f"{simulator.base_url}/videos",
        params={"limit": 100},
        headers={"Authorization": "Bearer sk-test"},
        timeout=10,
    )
    r.raise_for_status()
    return next(v["status"] for v in r.json()["data"] if v["id"] == video_id)


def submitted(alice: Any, source: Video, prompt: str = "a webhook remix") -> Video:
    video = submit_remix(user=alice, source=source, prompt=prompt, key=uuid.uuid4())
    drive(lambda: Video.objects.get(pk=video.pk).submission == Video.Submission.SUBMITTED)
    video.refresh_from_db()
    return video


def snapshot(video: Video) -> tuple[Any, ...]:
    video.refresh_from_db()
    return (video.status, video.progress, video.next_poll_at, video.updated_at, video.asset_state)


def test_a_valid_delivery_rereads_the_job_and_completes_it(
    client: Client,
    hooked: Provider,
    secret: str,
    alice: Any,
    completed: Video,
    simulator: Simulator,
) -> None:
    video = submitted(alice, completed)
    assert video.video_id is not None  # submitted: the provider has named it
    # With webhooks, polling is only a slow fallback.
    assert video.next_poll_at is not None
    assert video.next_poll_at - timezone.now() > timedelta(seconds=30)
    deadline = time.monotonic() + 10
    while provider_status(simulator, video.video_id) != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    before = retrieves(simulator, video.video_id)

    r = post(client, hooked, *signed(secret, video.video_id))

    assert r.status_code == 200 and r.content == b"ok"
    assert retrieves(simulator, video.video_id) == before + 1  # re-read from the provider
    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED and video.progress == 100
    assert WebhookDelivery.objects.filter(provider=hooked, video_id=video.video_id).count() == 1


def test_a_forged_signature_is_refused_and_changes_nothing(
    client: Client, hooked: Provider, alice: Any, completed: Video, simulator: Simulator
) -> None:
    video = submitted(alice, completed)
    assert video.video_id is not None  # submitted: the provider has named it
    before, reads = snapshot(video), retrieves(simulator, video.video_id)

    r = post(client, hooked, *signed(new_secret(), video.video_id))

    assert r.status_code == 400 and b"Signature check failed" in r.content
    assert snapshot(video) == before
    assert retrieves(simulator, video.video_id) == reads
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b, h: (b.replace(b"video.completed", b"video.failed"), h), id="body"),
        pytest.param(lambda b, h: (b, {**h, "webhook-id": "wh_other"}), id="webhook-id"),
        pytest.param(lambda b, h: (b, {**h, "webhook-signature": "garbage"}), id="no-comma"),
        pytest.param(lambda b, h: (b, {**h, "webhook-signature": "v1,%%%"}), id="not-base64"),
        pytest.param(lambda b, h: (b, {**h, "webhook-timestamp": "soon"}), id="timestamp"),
        pytest.param(
            lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-signature"}),
            id="unsigned",
        ),
    ],
)
def test_tampered_deliveries_are_400_never_500(
    client: Client, hooked: Provider, secret: str, tamper: Any
) -> None:
    body, headers = tamper(*signed(secret, "video_123"))
    r = post(client, hooked, body, headers)
    assert r.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_an_expired_timestamp_is_refused(
    client: Client,
    hooked: Provider,
    secret: str,
    alice: Any,
    completed: Video,
    simulator: Simulator,
) -> None:
    video = submitted(alice, completed)
    assert video.video_id is not None  # submitted: the provider has named it
    before, reads = snapshot(video), retrieves(simulator, video.video_id)
    stale = datetime.now(UTC) - timedelta(minutes=5, seconds=30)

    r = post(client, hooked, *signed(secret, video.video_id, at=stale))

    assert r.status_code == 400 and b"too old" in r.content
    assert snapshot(video) == before and retrieves(simulator, video.video_id) == reads
    assert not WebhookDelivery.objects.exists()


def test_a_replay_is_acknowledged_and_ignored(
    client: Client,
    hooked: Provider,
    secret: str,
    alice: Any,
    completed: Video,
    simulator: Simulator,
) -> None:
    video = submitted(alice, completed)
    assert video.video_id is not None  # submitted: the provider has named it
    body, headers = signed(secret, video.video_id)
    assert post(client, hooked, body, headers).content == b"ok"
    reads = retrieves(simulator, video.video_id)

    again = post(client, hooked, body, headers)
    # The same webhook-id, re-signed later: still the same delivery.
    resigned = post(
        client, hooked, *signed(secret, video.video_id, webhook_id=headers["webhook-id"])
    )

    assert again.status_code == resigned.status_code == 200
    assert again.content == resigned.content == b"duplicate"
    assert retrieves(simulator, video.video_id) == reads  # no second re-read
    assert WebhookDelivery.objects.count() == 1


def test_the_payload_cannot_complete_a_running_job(
    client: Client,
    hooked: Provider,
    secret: str,
    alice: Any,
    completed: Video,
    simulator: Simulator,
) -> None:
    simulator.configure(speed=1)  # the job takes ~20 s at the provider
    video = submitted(alice, completed)
    assert video.video_id is not None  # submitted: the provider has named it
    reads = retrieves(simulator, video.video_id)

    r = post(client, hooked, *signed(secret, video.video_id, event="video.completed"))

    assert r.status_code == 200
    assert retrieves(simulator, video.video_id) == reads + 1  # it asked the provider instead
    video.refresh_from_db()
    assert video.status in Video.ACTIVE and video.progress < 100
    assert video.asset_state == Video.Assets.PENDING and not video.video_file


def test_a_delivery_for_an_unknown_video_is_acknowledged_and_harmless(
    client: Client, hooked: Provider, secret: str, alice: Any, completed: Video
) -> None:
    before = list(Video.objects.values_list("pk", "status", "updated_at"))
    r = post(client, hooked, *signed(secret, "video_not_ours"))
    assert r.status_code == 200  # so the provider stops retrying
    assert list(Video.objects.values_list("pk", "status", "updated_at")) == before


def test_webhooks_not_configured_are_refused(
    client: Client, provider: Provider, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, headers = signed(secret, "video_123")
    provider.webhook_secret_env = SECRET_ENV
    provider.save()  # secret set, but webhooks switched off for this provider
    r = post(client, provider, body, headers)
    assert r.status_code == 400 and b"not configured" in r.content

    provider.webhooks_enabled = True
    provider.save()
    monkeypatch.delenv(SECRET_ENV)  # switched on, but the secret is missing
    r = post(client, provider, body, headers)
    assert r.status_code == 400 and b"not configured" in r.content
    assert not WebhookDelivery.objects.exists()


def test_a_placeholder_secret_is_refused_not_a_crash(
    client: Client, hooked: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "whsec_")  # the prefix of an unfinished .env line
    r = post(client, hooked, *signed(new_secret(), "video_123"))
    assert r.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_a_raw_secret_is_used_as_bytes_like_openai_does(
    client: Client, hooked: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenAI's SDK base64-decodes only `whsec_` secrets and signs with any other one as UTF-8
    # bytes; the simulator (and gateways copying OpenAI) do the same.
    monkeypatch.setenv(SECRET_ENV, "plain-secret-from-a-gateway")
    r = post(client, hooked, *signed("plain-secret-from-a-gateway", "video_123"))
    assert r.status_code == 200


def test_anonymous_posts_need_a_signature_not_a_login(
    client: Client, hooked: Provider, secret: str
) -> None:
    url = reverse("jobs:webhook", args=[hooked.pk])
    unsigned = client.post(url, data=b"{}", content_type="application/json")
    assert unsigned.status_code == 400  # refused for the signature, not redirected to log in
    assert client.get(url).status_code == 405
    assert post(client, hooked, *signed(secret, "video_123")).status_code == 200


def test_unknown_or_disabled_providers_are_404(
    client: Client, hooked: Provider, secret: str
) -> None:
    body, headers = signed(secret, "video_123")
    assert (
        client.post("/webhooks/999999/", body, "application/json", headers=headers).status_code
        == 404
    )
    hooked.enabled = False
    hooked.save()
    assert post(client, hooked, body, headers).status_code == 404


def test_an_oversized_body_is_refused(client: Client, hooked: Provider, secret: str) -> None:
    r = post(client, hooked, *signed(secret, "v" * 70_000))
    assert r.status_code == 400 and b"too large" in r.content
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_simulator_deliveries_complete_jobs_with_at_most_one_read_each(
    live_server: Any,
    hooked: Provider,
    secret: str,
    alice: Any,
    completed: Video,
    simulator: Simulator,
    settings: Any,
) -> None:
    settings.POLL_WEBHOOK_SECONDS = 3600  # the fallback poll would never come in this test
    simulator.configure(
        webhook_url=f"{live_server.url}{reverse('jobs:webhook', args=[hooked.pk])}",
        webhook_secret=secret,
        webhook_duplicates=True,
        webhook_shuffle=True,
    )
    try:
        # ImmediateBackend: each submission is sent as soon as its row is committed.
        videos = [
            submit_remix(user=alice, source=completed, prompt=f"hook {n}", key=uuid.uuid4())
            for n in range(4)
        ]
        ids = [v.pk for v in videos]

        def done() -> bool:
            archived = Video.objects.filter(pk__in=ids, asset_state=Video.Assets.ARCHIVED).count()
            return archived == len(ids) and simulator.stats()["webhooks"]["delivered"] >= 8

        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, simulator.stats()["webhooks"]
            time.sleep(0.2)
        stats = simulator.stats()
    finally:
        simulator.configure(webhook_url=None, webhook_duplicates=False, webhook_shuffle=False)

    for video in Video.objects.filter(pk__in=ids):
        assert video.status == Video.Status.COMPLETED
        assert stats["per_video"][video.video_id]["retrieve"] <= 1, video.video_id
    # Every event arrived twice; each webhook-id was acted on once.
    assert WebhookDelivery.objects.filter(provider=hooked).count() == len(ids)
