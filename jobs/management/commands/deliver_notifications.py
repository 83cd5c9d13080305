"""The outbound notification worker: sends queued deliveries to the teams' targets."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connection

from jobs.services.outbound import Claim, claim_due, deliver_claimed

IDLE_SECONDS = 1.0  # between looks at an empty queue: notifications are not that urgent


class Command(BaseCommand):
    help = (
        "Send queued outbound notifications (Slack-compatible and signed webhooks) until "
        "SIGTERM/SIGINT, retrying failures with back-off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=4,
            help="sends in flight at once (each is bounded in time; a slow receiver holds one)",
        )
        parser.add_argument("--batch", type=int, default=20, help="most deliveries claimed at once")
        parser.add_argument("--once", action="store_true", help="send what is due now, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["threads"] < 1:
            raise CommandError("--threads must be at least 1")
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.stdout.write(f"delivering notifications with {options['threads']} threads")
        with ThreadPoolExecutor(options["threads"], thread_name_prefix="outbound") as pool:
            while not self.stopping:
                close_old_connections()  # this process outlives any one DB connection
                claims = claim_due(limit=options["batch"])
                if options["once"]:  # in this thread (and its transaction, in tests)
                    self.report([deliver_claimed(claim) for claim in claims])
                    break
                # The batch finishes before the next claim: at most DEADLINE per round.
                self.report(list(pool.map(self.deliver, claims)))
                if not claims:
                    time.sleep(IDLE_SECONDS)
        self.stdout.write("notification worker stopped")

    def report(self, states: list[str]) -> None:
        if states:
            counts = {s: states.count(s) for s in sorted(set(states))}
            self.stdout.write(", ".join(f"{n} {s}" for s, n in counts.items()))

    @staticmethod
    def deliver(claim: Claim) -> str:
        close_old_connections()
        try:
            return deliver_claimed(claim)
        finally:
            connection.close()  # a pool thread's own connection; a claim is seconds apart

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stdout.write(f"{signal.strsignal(signum)}: finishing the sends in hand")
        self.stopping = True
