"""Create the demo admin, the local simulator provider with Sora 2 prices, and sample videos."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser, OutputWrapper

from jobs.services.demo import Demo, seed_demo, seed_openrouter_demo


class Command(BaseCommand):
    help = "Seed the demo: admin user, local simulator provider, and its sample videos."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("DEMO_USERNAME", "admin"))
        parser.add_argument("--base-url", default=settings.PROVIDER_DEFAULT_BASE_URL)
        parser.add_argument("--no-sync", action="store_true", help="do not import samples")
        parser.add_argument(
            "--openrouter-base-url",
            default="",
            help="also add the simulator in OpenRouter's dialect at this URL (…/api/v1)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        demo = seed_demo(
            username=options["username"], base_url=options["base_url"], sync=not options["no_sync"]
        )
        report(demo, self.stdout, self.stderr)
        if options["openrouter_base_url"]:
            second, problem = seed_openrouter_demo(base_url=options["openrouter_base_url"])
            self.stdout.write(f"provider “{second}” at {second.base_url}")
            if problem:
                self.stderr.write(problem)


def report(demo: Demo, stdout: OutputWrapper, stderr: OutputWrapper) -> None:
    """What seeding did, for the operator; `rundemo` prints the same."""
    if demo.provider_created:
        stdout.write(f"provider “{demo.provider}” at {demo.provider.base_url}")
    if demo.sync_error:
        stderr.write(f"could not import sample videos: {demo.sync_error}")
    elif demo.synced is not None:
        stdout.write(f"imported {demo.synced.new} of {demo.synced.seen} videos from the provider")
    stdout.write(f"login: {demo.username} / {demo.password}")
