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

from jobs import tracker
from jobs.archive import SWEEP_EVERY, remove_stale_partials


class Lane:
    """One kind of work: downloads (minutes for a large asset) or everything else (one quick
    call). Each lane has its own claims and a cap on the pool's threads it may hold.

    Claims run ahead of the free threads by up to one lane's worth: a claim is a write
    transaction, so claiming one row per freed thread would double the writes (on SQLite they
    serialise); a claimed row waits about one job's time for its thread, far inside its lease.
    """

    def __init__(self, *, archives: bool, cap: int) -> None:
        self.archives = archives
        self.cap = cap
        self.queue: deque[int] = deque()  # claimed, waiting for a thread
        self.running: set[Future[None]] = set()
        self.next_claim = 0.0  # after a claim that drained everything due, wait a tick

    def prune(self) -> None:
        self.running.difference_update([f for f in self.running if f.done()])

    def claim(self, batch: int) -> None:
        self.prune()
        room = 2 * self.cap - len(self.running) - len(self.queue)
        now = time.monotonic()
        if room > 0 and len(self.queue) < self.cap and now >= self.next_claim:
            asked = min(room, batch)
            ids = tracker.claim_due(limit=asked, archives=self.archives)
            self.queue.extend(ids)
            if len(ids) < asked:
                self.next_claim = now + settings.TRACKER_IDLE_SECONDS

    def can_start(self) -> bool:
        return bool(self.queue) and len(self.running) < self.cap


class Command(BaseCommand):
    help = "Track video jobs at the provider until SIGTERM/SIGINT (submit, refresh, archive)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.TRACKER_THREADS,
            help="provider calls in flight at once (a bounded pool, at least 2; downloads never "
            "hold the last quarter of the threads, so status reads always have some)",
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
        removed = remove_stale_partials()
        if removed:
            self.stdout.write(f"removed {removed} unfinished downloads left by a dead worker")
        reserved = max(1, threads // 4)  # for status reads: a burst of downloads cannot stall them
        lanes = (Lane(archives=False, cap=threads), Lane(archives=True, cap=threads - reserved))
        self.stdout.write(f"tracking videos with {threads} threads")
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="track") as pool:
            try:
                while not self.stopping:
                    close_old_connections()  # this process outlives any one DB connection
                    for lane in lanes:
                        lane.claim(options["batch"])
                    started = self.start(pool, lanes, threads)
                    if options["once"]:  # finish what the one claim took, then stop
                        while busy := self.busy(lanes):
                            wait(busy, return_when=FIRST_COMPLETED)
                            self.start(pool, lanes, threads)
                        break
                    # Also on every archive's way in; this catches them when none is due.
                    remove_stale_partials(at_most_every=SWEEP_EVERY)
                    if started == 0:  # nothing to start: wake when a thread frees up, or a tick
                        idle = settings.TRACKER_IDLE_SECONDS
                        if busy := self.busy(lanes):
                            wait(busy, timeout=idle, return_when=FIRST_COMPLETED)
                        else:
                            time.sleep(idle)
            finally:
                # Claimed but never started: hand them back now rather than when the lease
                # runs out, so a restarted (or another) tracker takes them at once.
                tracker.release_claims(ids=[pk for lane in lanes for pk in lane.queue])
                self._close_thread_connections(pool, threads)
        self.stdout.write("tracker stopped")

    @staticmethod
    def start(pool: ThreadPoolExecutor, lanes: tuple[Lane, ...], threads: int) -> int:
        """Start claimed work on the free threads, taking turns between the lanes."""
        for lane in lanes:
            lane.prune()
        free = threads - sum(len(lane.running) for lane in lanes)
        started = 0
        while free > 0 and any(lane.can_start() for lane in lanes):
            for lane in lanes:
                if free > 0 and lane.can_start():
                    lane.running.add(pool.submit(Command.process, lane.queue.popleft()))
                    free -= 1
                    started += 1
        return started

    @staticmethod
    def busy(lanes: tuple[Lane, ...]) -> set[Future[None]]:
        return {f for lane in lanes for f in lane.running if not f.done()}

    @staticmethod
    def process(video_id: int) -> None:
        # A pool thread keeps its DB connection from job to job (reconnecting per job cost
        # more than the job on PostgreSQL); Django replaces it when too old or broken.
        close_old_connections()
        try:
            tracker.process_claimed(video_id=video_id)
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
