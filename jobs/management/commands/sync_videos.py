"""Adopt jobs created elsewhere (e.g. by scripts using the SDK), for a cron job."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.models import Provider
from jobs.services.imports import sync_provider


class Command(BaseCommand):
    help = (
        "Page through each provider's list of jobs and import the ones this dashboard does not "
        "know yet, linking remixes to their sources. Running it again imports nothing new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", metavar="NAME", help="only this provider (by name)")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["provider"]
        if name:
            provider = Provider.objects.filter(name=name).first()
            if provider is None:
                known = ", ".join(Provider.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No provider named “{name}” (configured: {known}).")
            providers = [provider]
        else:
            # Without --provider, skip the ones that cannot list instead of failing on them.
            providers = list(Provider.objects.filter(enabled=True, can_list=True))
            if not providers:
                self.stdout.write("No enabled provider can list its jobs; nothing to sync.")
                return
        failed = 0
        for provider in providers:
            try:
                result = sync_provider(provider=provider)
            except ValidationError as exc:
                failed += 1
                self.stderr.write(f"{provider}: {' '.join(exc.messages)}")
            else:
                self.stdout.write(f"{provider}: {result.seen} jobs listed, {result.new} new")
        if failed:  # a non-zero exit, so cron's mail or the scheduler shows it
            raise CommandError(f"{failed} of {len(providers)} providers could not be synced.")
