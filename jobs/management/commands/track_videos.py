"""The long-running tracker: submits, refreshes and archives videos when they are due."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

from jobs import services


class Command(BaseCommand):
    help = "Track video jobs at the provider until SIGTERM/SIGINT (submit, refresh, archive)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.TRACKER_THREADS,
            help="provider calls in flight at once (bounded pool)",
        )
        parser.add_argument("--batch", type=int, default=50, help="videos claimed per step")
        parser.add_argument("--once", action="store_true", help="run one step and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        removed = services.remove_stale_partials()
        if removed:
            self.stdout.write(f"removed {removed} unfinished downloads left by a dead worker")
        threads = max(1, options["threads"])
        self.stdout.write(f"tracking videos with {threads} threads")
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="track") as pool:

            def run(ids: list[int]) -> None:
                # One slow provider answer holds one thread, not the whole batch.
                list(pool.map(self.process, ids))

            last_sweep = time.monotonic()
            while not self.stopping:
                close_old_connections()  # this process outlives any one DB connection
                done = services.poll_due_videos(limit=options["batch"], run=run)
                if options["once"]:
                    break
                if time.monotonic() - last_sweep > 300:
                    services.remove_stale_partials()
                    last_sweep = time.monotonic()
                if done == 0:
                    time.sleep(settings.TRACKER_IDLE_SECONDS)  # idle only; busy loops on
        self.stdout.write("tracker stopped")

    @staticmethod
    def process(video_id: int) -> None:
        try:
            services.process_claimed(video_id=video_id)
        finally:
            connection.close()  # each pool thread has its own connection; do not leak them

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stdout.write(f"{signal.strsignal(signum)}: finishing the current batch")
        self.stopping = True
