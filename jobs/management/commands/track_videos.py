"""The long-running tracker: submits, refreshes and archives videos when they are due."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connection

from jobs import tracker
from jobs.archive import SWEEP_EVERY, remove_stale_partials

# The shortest wait between two claims of a lane: reads aimed at a predicted finish start at
# most this late, and claims stay batched (ten a second at most).
GAP = 0.1


class Sizer:
    """How many status reads to keep in flight, by Little's law: in flight = rate × latency.

    A read spends almost all its time waiting for the provider (300 ms from far away, against
    a few ms of CPU), so the threads needed are the reads due per second times the seconds
    each holds its thread. The rate is known ahead: the rows due within the next HORIZON
    seconds (the overdue ones among them), counted on the `video_due` index. The latency is
    measured: the average of the jobs finished in the last WINDOW seconds. The lane may hold
    MARGIN times their product, between `low` and `high`. It grows at once when more falls
    due, and shrinks slowly, so a lull between two bunches of due rows keeps the threads.
    """

    HORIZON = 2.0  # seconds ahead whose due rows count
    WINDOW = 5.0  # seconds of finished jobs the latency comes from
    MARGIN = 1.5  # headroom over the average in flight: due times bunch, latency varies
    EVERY = 0.5  # seconds between adjustments
    SHRINK = 0.9  # at most this share of the threads is kept per adjustment when less is due

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.cap = low
        self.finished: deque[tuple[float, float]] = deque()  # (when, seconds it took)
        self.adjusted = 0.0
        self.rate = 0.0  # status reads due per second, the last count
        self.latency = 0.0  # seconds per job; 0 until one has finished

    def record(self, seconds: float) -> None:
        """A job of the lane finished (called on its pool thread; deque appends are atomic)."""
        self.finished.append((time.monotonic(), seconds))

    def adjust(self, now: float) -> int:
        if now - self.adjusted < self.EVERY:
            return self.cap
        self.adjusted = now
        while self.finished and self.finished[0][0] < now - self.WINDOW:
            self.finished.popleft()
        done = list(self.finished)
        if done:
            self.latency = sum(seconds for _, seconds in done) / len(done)
        self.rate = tracker.due_within(self.HORIZON, archives=False) / self.HORIZON
        wanted = math.ceil(self.MARGIN * self.rate * self.latency)
        wanted = max(wanted, math.floor(self.cap * self.SHRINK))
        self.cap = max(self.low, min(self.high, wanted))
        return self.cap

    def describe(self) -> str:
        return (
            f"status reads: up to {self.cap} at once ({self.rate:.0f} due a second, "
            f"{self.latency * 1000:.0f} ms each)"
        )


class Lane:
    """One kind of work with its own pool and bound: downloads (minutes for a large asset)
    or everything else (one quick call each). A burst of downloads can never take a thread
    that status reads need, because they are not the same threads.

    Claims run ahead of the free threads by up to one lane's worth, and only once at most half
    a lane's worth is waiting: a claim is a write transaction, so claiming one row per freed
    thread would double the writes (on SQLite they serialise); a claimed row waits about one
    job's time for its thread, far inside its lease.
    """

    def __init__(self, *, archives: bool, threads: int, sizer: Sizer | None = None) -> None:
        self.archives = archives
        self.threads = threads
        self.sizer = sizer
        self.cap = sizer.cap if sizer else threads
        kind = "download" if archives else "track"
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=kind)
        self.queue: deque[tracker.Claim] = deque()  # claimed, waiting for a thread
        self.running: set[Future[None]] = set()
        self.next_claim = 0.0  # after a claim that drained everything due, wait a tick
        self.idents: set[int] = set()  # the pool threads that ran something (to close them)
        self.checked = threading.local()  # when each thread last looked at its connection

    def prune(self) -> None:
        self.running.difference_update([f for f in self.running if f.done()])

    def room(self) -> int:
        """How many more rows this lane may claim now (0 while enough are waiting)."""
        if len(self.queue) > self.cap // 2:
            return 0
        return max(0, 2 * self.cap - len(self.running) - len(self.queue))

    def claim(self, batch: int, now: float) -> None:
        self.prune()
        if self.sizer is not None:
            self.cap = self.sizer.adjust(now)
        room = self.room()
        if room > 0 and now >= self.next_claim:
            asked = min(room, batch)
            claims = tracker.claim_work(limit=asked, archives=self.archives)
            self.queue.extend(claims)
            if len(claims) < asked:
                # All due is taken: look again when the next row falls due (a read aimed at a
                # predicted finish must not wait for a tick), or after a tick at the latest,
                # for rows a webhook or a user makes due without telling this process.
                # Not sooner than GAP: with rows falling due every few ms, that would be a
                # claim (a write) per row.
                soon = tracker.seconds_until_due(archives=self.archives)
                tick = settings.TRACKER_IDLE_SECONDS
                self.next_claim = now + max(GAP, min(tick, tick if soon is None else soon))

    def start(self, wake: threading.Event) -> int:
        """Start claimed work on this lane's free threads. A finished job sets `wake` when
        claimed work waits for its thread (else nothing is gained by waking the loop early)."""
        self.prune()
        started = 0
        while self.queue and len(self.running) < self.cap:
            future = self.pool.submit(self.process, self.queue.popleft())
            future.add_done_callback(lambda _: self.wake_if_waiting(wake))
            self.running.add(future)
            started += 1
        return started

    def wake_if_waiting(self, wake: threading.Event) -> None:
        if self.queue and not wake.is_set():
            wake.set()

    def process(self, claim: tracker.Claim) -> None:
        self.idents.add(threading.get_ident())
        began = time.monotonic()
        # A pool thread keeps its DB connection from job to job (reconnecting per job cost
        # more than the job on PostgreSQL); Django replaces it when too old or broken, looked
        # at once a second (each look is a query on PostgreSQL, as much as the job's own).
        if began - getattr(self.checked, "at", 0.0) >= 1:
            close_old_connections()
            self.checked.at = began
        try:
            tracker.process_claimed(video_id=claim.pk, claim=claim)
        except BaseException:
            connection.close()  # whatever broke may have broken the connection too
            raise
        finally:
            if self.sizer is not None:
                self.sizer.record(time.monotonic() - began)

    def close(self) -> None:
        """Close each pool thread's connection, in that thread (Django forbids closing another
        thread's), then the pool. The barrier holds every task until all have started, so each
        thread that ever ran a job runs exactly one of them."""
        parties = len(self.idents)
        if parties:
            barrier = threading.Barrier(parties)

            def close_own() -> None:
                connection.close()
                barrier.wait(timeout=30)

            for future in [self.pool.submit(close_own) for _ in range(parties)]:
                future.result()
        self.pool.shutdown(wait=True)


class Command(BaseCommand):
    help = "Track video jobs at the provider until SIGTERM/SIGINT (submit, refresh, archive)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.TRACKER_THREADS,
            help="most status reads and submits in flight at once (at least 2; how many are "
            "used is sized from the reads due and their measured latency)",
        )
        parser.add_argument(
            "--download-threads",
            type=int,
            default=settings.TRACKER_DOWNLOAD_THREADS,
            help="downloads at once, on threads of their own (at least 1)",
        )
        parser.add_argument(
            "--batch", type=int, default=50, help="most videos claimed in one query"
        )
        parser.add_argument("--once", action="store_true", help="run one step and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        threads, downloads = options["threads"], options["download_threads"]
        if threads < 2:
            raise CommandError("--threads must be at least 2 (status reads need their own)")
        if downloads < 1:
            raise CommandError("--download-threads must be at least 1")
        self.stopping = False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        removed = remove_stale_partials()
        if removed:
            self.stdout.write(f"removed {removed} unfinished downloads left by a dead worker")
        sizer = Sizer(low=min(settings.TRACKER_MIN_THREADS, threads), high=threads)
        lanes = (
            Lane(archives=False, threads=threads, sizer=sizer),
            Lane(archives=True, threads=downloads),
        )
        self.stdout.write(
            f"tracking videos with {threads} threads at most for status reads (sized from "
            f"their latency) and {downloads} for downloads"
        )
        wake = threading.Event()  # set by every finished job
        shown, shown_at = sizer.cap, 0.0
        try:
            while not self.stopping:
                close_old_connections()  # this process outlives any one DB connection
                wake.clear()
                now = time.monotonic()
                for lane in lanes:
                    lane.claim(options["batch"], now)
                started = sum(lane.start(wake) for lane in lanes)
                if sizer.cap != shown and now - shown_at >= 5:  # for the operator, not often
                    self.stdout.write(sizer.describe())
                    shown, shown_at = sizer.cap, now
                if options["once"]:  # finish what the one claim took, then stop
                    while any(lane.running or lane.queue for lane in lanes):
                        wake.wait(settings.TRACKER_IDLE_SECONDS)
                        wake.clear()
                        for lane in lanes:
                            lane.start(wake)
                    break
                # Also on every archive's way in; this catches them when none is due.
                remove_stale_partials(at_most_every=SWEEP_EVERY)
                if started == 0:  # nothing to start: wake when a job finishes or work is due
                    wake.wait(self.pause(lanes))
        finally:
            # Claimed but never started: hand them back now rather than when the lease
            # runs out, so a restarted (or another) tracker takes them at once.
            tracker.release_claims(ids=[claim.pk for lane in lanes for claim in lane.queue])
            for lane in lanes:
                lane.close()
        self.stdout.write("tracker stopped")

    @staticmethod
    def pause(lanes: tuple[Lane, ...]) -> float:
        """Seconds until a lane that has room may claim again (a tick at most)."""
        now = time.monotonic()
        waits = [lane.next_claim - now for lane in lanes if lane.room() > 0]
        return max(0.0, min([settings.TRACKER_IDLE_SECONDS, *waits]))

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stdout.write(f"{signal.strsignal(signum)}: finishing the jobs in hand")
        self.stopping = True
