"""The demo's starting point: an admin, the local simulator as provider, its sample videos."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from jobs.models import CatalogEntry, Provider
from jobs.services.catalog import fill_catalog
from jobs.services.imports import SyncResult, sync_provider

# OpenAI's list prices before the 2026-09-24 shutdown (per second of output).
SORA_PRICES = {
    ("sora-2", "720x1280"): "0.10",
    ("sora-2", "1280x720"): "0.10",
    ("sora-2-pro", "720x1280"): "0.30",
    ("sora-2-pro", "1280x720"): "0.30",
    ("sora-2-pro", "1024x1792"): "0.50",
    ("sora-2-pro", "1792x1024"): "0.50",
}


@dataclass(frozen=True)
class Demo:
    username: str
    password: str
    provider: Provider
    provider_created: bool
    synced: SyncResult | None
    sync_error: str


def seed_catalog(provider: Provider) -> None:
    for (model, size), price in SORA_PRICES.items():
        CatalogEntry.objects.get_or_create(
            provider=provider,
            model=model,
            size=size,
            defaults={"seconds": ["4", "8", "12"], "price_per_second": Decimal(price)},
        )


def seed_demo(*, username: str, base_url: str, sync: bool = True) -> Demo:
    """Idempotent: a second run keeps the admin's password and imports nothing twice."""
    password = _ensure_admin(username)
    provider, created = Provider.objects.get_or_create(
        name=settings.PROVIDER_DEFAULT_NAME,
        defaults={
            "base_url": base_url,
            "api_key_env": settings.PROVIDER_DEFAULT_API_KEY_ENV,
            "is_default": True,
            # The simulator has every variant of the API the dashboard uses.
            "can_edit": True,
            "can_extend": True,
        },
    )
    if provider.base_url != base_url:
        provider.base_url = base_url
        provider.save(update_fields=["base_url"])
    seed_catalog(provider)
    synced, error = None, ""
    if sync:
        try:
            synced = sync_provider(provider=provider)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    return Demo(username, password, provider, created, synced, error)


OPENROUTER_DEMO_NAME = "OpenRouter simulator"


def seed_openrouter_demo(*, base_url: str) -> tuple[Provider, str]:
    """The simulator in OpenRouter's dialect as a second provider (`OPENROUTER_DEMO=1 make
    run`), its catalog read from its GET /videos/models. Returns the provider and, if the
    catalog could not be read, why (in words)."""
    provider, _ = Provider.objects.update_or_create(
        name=OPENROUTER_DEMO_NAME,
        defaults={
            "dialect": Provider.Dialect.OPENROUTER,
            "base_url": base_url,
            "api_key_env": settings.PROVIDER_DEFAULT_API_KEY_ENV,
            # What OpenRouter's video API lacks: list, remix, edits, delete, image variants.
            "can_remix": False,
            "can_edit": False,
            "can_extend": True,  # previous_job_id continues a completed job
            "can_list": False,
            "can_delete": False,
            "serves_variants": False,
        },
    )
    try:
        fill_catalog(provider=provider)  # a price per size, as its models endpoint gives them
    except ValidationError as exc:
        return provider, " ".join(exc.messages)
    return provider, ""


def _ensure_admin(username: str) -> str:
    """Password from DEMO_PASSWORD, else generated once and kept in var/ (mode 600)."""
    kept = Path(settings.BASE_DIR, "var", "demo-password")
    password = os.environ.get("DEMO_PASSWORD") or (
        kept.read_text().strip() if kept.exists() else secrets.token_urlsafe(12)
    )
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        User.objects.create_superuser(username=username, password=password, email="")
        if not os.environ.get("DEMO_PASSWORD"):
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(password)
            kept.chmod(0o600)
    elif os.environ.get("DEMO_PASSWORD"):
        user.set_password(password)
        user.save(update_fields=["password"])
    return password
