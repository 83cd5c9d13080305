"""Create the demo admin, the local simulator provider with Sora 2 prices, and sample videos."""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from jobs import services
from jobs.models import CatalogEntry, Provider
from jobs.provider import ProviderError

# OpenAI's list prices before the 2026-09-24 shutdown (per second of output).
SORA_PRICES = {
    ("sora-2", "720x1280"): "0.10",
    ("sora-2", "1280x720"): "0.10",
    ("sora-2-pro", "720x1280"): "0.30",
    ("sora-2-pro", "1280x720"): "0.30",
    ("sora-2-pro", "1024x1792"): "0.50",
    ("sora-2-pro", "1792x1024"): "0.50",
}


def seed_catalog(provider: Provider) -> None:
    for (model, size), price in SORA_PRICES.items():
        CatalogEntry.objects.get_or_create(
            provider=provider,
            model=model,
            size=size,
            defaults={"seconds": ["4", "8", "12"], "price_per_second": Decimal(price)},
        )


class Command(BaseCommand):
    help = "Seed the demo: admin user, local simulator provider, and its sample videos."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("DEMO_USERNAME", "admin"))
        parser.add_argument("--base-url", default=settings.PROVIDER_DEFAULT_BASE_URL)
        parser.add_argument("--no-sync", action="store_true", help="do not import samples")

    def handle(self, *args: Any, **options: Any) -> None:
        password = self.ensure_admin(options["username"])
        provider, created = Provider.objects.get_or_create(
            name=settings.PROVIDER_DEFAULT_NAME,
            defaults={
                "base_url": options["base_url"],
                "api_key_env": settings.PROVIDER_DEFAULT_API_KEY_ENV,
                "is_default": True,
            },
        )
        if provider.base_url != options["base_url"]:
            provider.base_url = options["base_url"]
            provider.save(update_fields=["base_url"])
        seed_catalog(provider)
        if created:
            self.stdout.write(f"provider “{provider}” at {provider.base_url}")
        if not options["no_sync"]:
            try:
                seen, new = services.sync_from_provider(provider=provider)
            except ProviderError as exc:
                self.stderr.write(f"could not import sample videos: {exc}")
            else:
                self.stdout.write(f"imported {new} of {seen} videos from the provider")
        self.stdout.write(f"login: {options['username']} / {password}")

    def ensure_admin(self, username: str) -> str:
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
