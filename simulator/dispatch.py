"""What both dialects' webhook senders share: a scanner thread, a pool of delivery threads,
the schedule of retries and duplicates, and one bounded POST.

Each dialect says what an event is, where it waits (SQLite for Standard Webhooks, memory
for OpenRouter) and how it is signed; `Dispatcher` runs the threads around that.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod

from .config import Settings
from .stats import Stats
from .store import Store

MAX_ATTEMPTS = 6
# Unscaled by --speed on purpose: these model the receiver's availability, not the job.
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
SHUFFLE_WINDOW = 1.5  # with webhook_shuffle, events are held up to this long, in random order
DUPLICATE_GAP = (0.05, 0.3)
SCAN_INTERVAL = 0.05
DELIVERY_TIMEOUT = 10
WORKERS = 4

# Deliveries never go through an HTTP proxy from the environment: receivers are local.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def first_due(settings: Settings, now: float) -> float:
    """When a new event first goes out: after the configured delay, shuffled if asked."""
    due = now + settings.webhook_delay
    if settings.webhook_shuffle:
        due += random.uniform(0, SHUFFLE_WINDOW)
    return due


def sends(settings: Settings) -> int:
    """How many times a delivery is sent successfully (twice with webhook_duplicates)."""
    return 2 if settings.webhook_duplicates else 1


def duplicate_due(now: float) -> float:
    return now + random.uniform(*DUPLICATE_GAP)


def retry_due(attempts: int, now: float) -> float | None:
    """When to try again after `attempts` failed sends, or None once they are used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    backoff = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
    return now + backoff * random.uniform(0.8, 1.2)


def post(url: str, body: bytes, headers: dict[str, str], stats: Stats) -> bool:
    """Send one delivery; True when the receiver answered 2xx in time."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with _opener.open(request, timeout=DELIVERY_TIMEOUT) as response:
            response.read()
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        ok = False
    stats.webhook_attempt(ok)
    return ok


class Dispatcher[Item](ABC):
    """The threads: `tick` finds what is due and `enqueue`s it; `deliver` sends one item."""

    label = "webhook"

    def __init__(self, store: Store, settings: Settings, stats: Stats) -> None:
        self.store = store
        self.settings = settings
        self.stats = stats
        self._stop = threading.Event()
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads.append(
            threading.Thread(target=self._scan_loop, name=f"{self.label}-scan", daemon=True)
        )
        self._threads += [
            threading.Thread(target=self._deliver_loop, name=f"{self.label}-{n}", daemon=True)
            for n in range(WORKERS)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for _ in range(WORKERS):
            self._queue.put(None)

    def enqueue(self, item: Item) -> None:
        self._queue.put(item)

    @abstractmethod
    def tick(self, now: float) -> None: ...

    @abstractmethod
    def deliver(self, item: Item) -> None: ...

    @abstractmethod
    def try_later(self, item: Item, due: float) -> None:
        """Put an item back to go out at `due` (after a crash in `deliver`, say)."""

    def _scan_loop(self) -> None:
        while not self._stop.wait(SCAN_INTERVAL):
            try:
                self.tick(time.time())
            except Exception as exc:  # a bad tick must not end deliveries for good
                self.stats.note_error(f"{self.label} scan: {exc!r}")

    def _deliver_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.deliver(item)
            except Exception as exc:
                self.stats.note_error(f"{self.label} delivery: {exc!r}")
                self.try_later(item, time.time() + 1)
