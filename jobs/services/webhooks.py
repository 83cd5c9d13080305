"""Standard Webhooks deliveries from a provider: verified, deduplicated, then a refresh."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from jobs.models import PROVIDER_ID_LENGTH, Provider, Video, WebhookDelivery
from jobs.services.manage import refresh_now


class WebhookRejected(Exception):
    """A delivery we refuse: bad signature, stale timestamp, or webhooks not configured."""


@dataclass(frozen=True)
class WebhookOutcome:
    duplicate: bool
    video_pk: int | None


def handle_webhook(*, provider: Provider, headers: dict[str, str], body: bytes) -> WebhookOutcome:
    """Verify a Standard Webhooks delivery and re-read the job it names.

    Only the id in the payload is used: the job's state always comes from the provider itself.
    """
    secret = provider.webhook_secret
    if not provider.webhooks_enabled or not secret:
        raise WebhookRejected("Webhooks are not configured for this provider.")
    try:
        # OpenAI's rule: a whsec_ secret is base64 after the prefix, any other is raw UTF-8.
        key = secret if secret.startswith("whsec_") else secret.encode()
        payload = Webhook(key).verify(body, headers)  # constant-time, 5-minute tolerance
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError) as exc:
        raise WebhookRejected(f"Signature check failed: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected("The payload is not a JSON object.")
    data = payload.get("data")
    if not isinstance(data, dict):
        data = {}
    remote_id = str(data.get("id") or "")
    if "\x00" in remote_id or len(remote_id) > PROVIDER_ID_LENGTH:
        # Not the id of a job we could hold (PostgreSQL refuses NUL, the column is 512 long);
        # a query with it would be a 500 on PostgreSQL. Acknowledged, nothing is read.
        remote_id = ""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                provider=provider,
                webhook_id=text(headers.get("webhook-id", ""), 255),
                event_type=text(payload.get("type", ""), 100),
                video_id=remote_id,
            )
    except IntegrityError:
        return WebhookOutcome(duplicate=True, video_pk=None)
    if not remote_id:
        return WebhookOutcome(duplicate=False, video_pk=None)
    video = Video.objects.filter(provider=provider, video_id=remote_id).first()
    if video is None:
        return WebhookOutcome(duplicate=False, video_pk=None)
    refresh_now(video_id=video.pk)
    return WebhookOutcome(duplicate=False, video_pk=video.pk)


def text(value: object, length: int) -> str:
    """A signed value, fit for a text column: PostgreSQL refuses NUL characters (a 500)."""
    return str(value).replace("\x00", "")[:length]
