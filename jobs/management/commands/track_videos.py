"""The long-running tracker: submits, refreshes and archives videos when they are due."""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connection

from jobs import services

SWEEP_SECONDS = 300  # how often a running tracker looks for downloads a dead worker left


class Lane:
    """One kind of work (downloads, or everything else) on its share of the pool's threads.

    Claims run ahead of the free threads by one lane's worth: a claim is a write transaction,
    so claiming one row per freed thread would double the writes (on SQLite they serialise);
    a claimed row waits at most about one job's time for its thread, far inside its lease.
    """

    def __init__(self, *, archives: bool, size: int) -> None:
        self.archives = archives
        self.size = size
        self.queue: deque[int] = deque()  # claimed, waiting for a thread
        self.running: set[Future[None]] = set()
        self.next_claim = 0.0  # after a claim that drained everything due, wait a tick

    def step(self, pool: ThreadPoolExecutor, batch: int) -> int:
        """Claim if there is room and it is time; start what the free threads can take."""
        self.running.difference_update([f for f in self.running if f.done()])
        room = 2 * self.size - len(self.running) - len(self.queue)
        now = time.monotonic()
        if room > 0 and now >= self.next_claim and len(self.queue) < self.size:
            asked = min(room, batch)
            ids = services.claim_due(limit=asked, archives=self.archives)
            self.queue.extend(ids)
            if len(ids) < asked:
                self.next_claim = now + settings.TRACKER_IDLE_SECONDS
        return self.start(pool)

    def start(self, pool: ThreadPoolExecutor) -> int:
        self.running.difference_update([f for f in self.running if f.done()])
        started = 0
        while self.queue and len(self.running) < self.size:
            self.running.add(pool.submit(Command.process, self.queue.popleft()))
            started += 1
        return started


class Command(BaseCommand):
    help = "Track video jobs at the provider until SIGTERM/SIGINT (submit, refresh, archive)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.TRACKER_THREADS,
            help="provider calls in flight at once (a bounded pool, at least 2: a quarter of "
            "the threads, at least one, download assets; the rest submit and refresh)",
        )
        parser.add_argument(
            "--batch", type=int, default=50, help="most videos claimed in one query"
        )
        parser.add_argument("--once", action="store_true", help="run one step and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        threads = options["threads"]
        if threads < 2:
            raise CommandError("--threads must be at least 2 (one for downloads, one for the rest)")
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        removed = services.remove_stale_partials()
        if removed:
            self.stdout.write(f"removed {removed} unfinished downloads left by a dead worker")
        # Two lanes: a download can take minutes, a status read a few milliseconds, so
        # downloads get their own share of the threads and never queue the reads behind them.
        downloads = max(1, threads // 4)
        lanes = [
            Lane(archives=False, size=threads - downloads),
            Lane(archives=True, size=downloads),
        ]
        self.stdout.write(f"tracking videos with {threads} threads ({downloads} for downloads)")
        last_sweep = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="track") as pool:
            try:
                while not self.stopping:
                    close_old_connections()  # this process outlives any one DB connection
                    started = sum(lane.step(pool, options["batch"]) for lane in lanes)
                    busy = set().union(*(lane.running for lane in lanes))
                    if options["once"]:
                        while any(lane.queue for lane in lanes):  # what the one claim took
                            wait(busy, return_when=FIRST_COMPLETED)
                            for lane in lanes:
                                lane.start(pool)
                            busy = set().union(*(lane.running for lane in lanes))
                        wait(busy)
                        break
                    if time.monotonic() - last_sweep > SWEEP_SECONDS:
                        services.remove_stale_partials()
                        last_sweep = time.monotonic()
                    if started == 0:  # nothing to start: wake when a thread frees up, or a tick
                        idle = settings.TRACKER_IDLE_SECONDS
                        if busy:
                            wait(busy, timeout=idle, return_when=FIRST_COMPLETED)
                        else:
                            time.sleep(idle)
            finally:
                # Claimed but never started: hand them back now rather than when the lease
                # runs out, so a restarted (or another) tracker takes them at once.
                services.release_claims(ids=[pk for lane in lanes for pk in lane.queue])
                self._close_thread_connections(pool, threads)
        self.stdout.write("tracker stopped")

    @staticmethod
    def process(video_id: int) -> None:
        # A pool thread keeps its DB connection from job to job (reconnecting per job cost
        # more than the job on PostgreSQL); Django replaces it when too old or broken.
        close_old_connections()
        try:
            services.process_claimed(video_id=video_id)
        except BaseException:
            connection.close()  # whatever broke may have broken the connection too
            raise

    @staticmethod
    def _close_thread_connections(pool: ThreadPoolExecutor, threads: int) -> None:
        """Close each pool thread's connection, in that thread (Django forbids closing another
        thread's). The barrier holds every task until all have started, so each of the pool's
        threads runs exactly one of them."""
        barrier = threading.Barrier(threads)

        def close_own() -> None:
            connection.close()
            barrier.wait(timeout=30)

        wait([pool.submit(close_own) for _ in range(threads)])

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stdout.write(f"{signal.strsignal(signum)}: finishing the jobs in hand")
        self.stopping = True
