"""Webhook deliveries from a provider: verified, deduplicated, then a refresh.

OpenAI-shaped providers sign with Standard Webhooks; OpenRouter with its own scheme
(`X-OpenRouter-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>,<raw body>">`, its skill
OpenRouterTeam/skills `skills/openrouter-video/SKILL.md`), the replay key in
`X-OpenRouter-Idempotency-Key: <job id>-<status>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from jobs.models import PROVIDER_ID_LENGTH, Provider, Video, WebhookDelivery
from jobs.services.manage import refresh_now

# How far a signed timestamp may be from now, either way (both schemes: five minutes).
TOLERANCE_SECONDS = 300


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
    if provider.dialect == Provider.Dialect.OPENROUTER:
        payload = verify_openrouter(secret, headers, body, now=time.time())
    else:
        payload = verify_standard(secret, headers, body)
    data = payload.get("data")
    if not isinstance(data, dict):
        data = {}
    remote_id = str(data.get("id") or "")
    if provider.dialect == Provider.Dialect.OPENROUTER:
        # OpenRouter's replay key, X-OpenRouter-Idempotency-Key = "<job id>-<status>", made
        # from the signed body: the header itself is not signed, so a replay could change it.
        status = data.get("status") or str(payload.get("type", "")).rpartition(".")[2]
        delivery_id = (
            f"{remote_id}-{status}"
            if remote_id
            else headers.get("x-openrouter-idempotency-key", "")
        )
    else:
        delivery_id = headers.get("webhook-id", "")
    if "\x00" in remote_id or len(remote_id) > PROVIDER_ID_LENGTH:
        # Not the id of a job we could hold (PostgreSQL refuses NUL, the column is 512 long);
        # a query with it would be a 500 on PostgreSQL. Acknowledged, nothing is read.
        remote_id = ""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                provider=provider,
                webhook_id=text(delivery_id, 255),
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


def verify_standard(secret: str, headers: dict[str, str], body: bytes) -> dict[str, object]:
    try:
        # OpenAI's rule: a whsec_ secret is base64 after the prefix, any other is raw UTF-8.
        key = secret if secret.startswith("whsec_") else secret.encode()
        payload = Webhook(key).verify(body, headers)  # constant-time, 5-minute tolerance
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError) as exc:
        raise WebhookRejected(f"Signature check failed: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected("The payload is not a JSON object.")
    return payload


def verify_openrouter(
    secret: str, headers: dict[str, str], body: bytes, *, now: float
) -> dict[str, object]:
    """OpenRouter's scheme: `t=<ts>,v1=<hex>` over "<ts>,<raw body>", keyed by the secret's
    UTF-8 bytes; any v1 may match (a secret being rotated), compared in constant time."""
    header = headers.get("x-openrouter-signature", "")
    pairs = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for name, _, value in pairs if name == "t"]
    signatures = [value for name, _, value in pairs if name == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or len(stamps[0]) > 15 or not signatures:
        raise WebhookRejected(
            "Signature check failed: the X-OpenRouter-Signature header is missing or not of "
            "the form t=<timestamp>,v1=<signature>."
        )
    stamp = int(stamps[0])
    seconds = stamp / 1000 if stamp > 10**11 else stamp  # milliseconds, if that is what it is
    if abs(now - seconds) > TOLERANCE_SECONDS:
        raise WebhookRejected(
            "Signature check failed: the delivery was signed more than five minutes from now, "
            "so it may be a replay."
        )
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"," + body, hashlib.sha256)
    digest = expected.hexdigest()
    if not any(hmac.compare_digest(digest, sig.lower()) for sig in signatures):
        raise WebhookRejected("Signature check failed: the signature does not match the body.")
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRejected("The payload is not JSON.") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("The payload is not a JSON object.")
    return payload


def text(value: object, length: int) -> str:
    """A signed value, fit for a text column: PostgreSQL refuses NUL characters (a 500)."""
    return str(value).replace("\x00", "")[:length]
