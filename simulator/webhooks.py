"""Standard Webhooks deliveries of `video.completed` / `video.failed` events.

A scanner notices jobs whose terminal time has passed (the lifecycle is clock-driven, so
nothing else "happens" when a job finishes) and stores one event per job. Events live in
SQLite, so a delivery survives a restart and keeps its webhook-id across retries and
duplicates, which is what receivers dedupe on.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

from standardwebhooks import Webhook

from .config import Settings
from .stats import Stats
from .store import Event, Store

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


def signing_key(secret: str) -> Webhook:
    """OpenAI rule: a `whsec_` secret is base64 after the prefix, anything else is raw UTF-8."""
    if secret.startswith("whsec_"):
        return Webhook(secret)
    return Webhook(secret.encode("utf-8"))


class WebhookDispatcher:
    def __init__(self, store: Store, settings: Settings, stats: Stats) -> None:
        self.store = store
        self.settings = settings
        self.stats = stats
        self._stop = threading.Event()
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.store.requeue_stuck_events()
        scanner = threading.Thread(target=self._scan_loop, name="webhook-scan", daemon=True)
        self._threads.append(scanner)
        for n in range(WORKERS):
            self._threads.append(
                threading.Thread(target=self._deliver_loop, name=f"webhook-{n}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for _ in range(WORKERS):
            self._queue.put(None)

    def _scan_loop(self) -> None:
        while not self._stop.wait(SCAN_INTERVAL):
            try:
                self.tick(time.time())
            except Exception as exc:  # a bad tick must not kill deliveries for good
                self.stats.note_error(f"webhook scan: {exc!r}")

    def tick(self, now: float) -> None:
        settings = self.settings
        for job in self.store.claim_finished(now):
            if not settings.webhook_url:
                continue  # like OpenAI: events only go to an endpoint configured at the time
            event_type = "video.failed" if job.fail_at is not None else "video.completed"
            due = now + settings.webhook_delay
            if settings.webhook_shuffle:
                due += random.uniform(0, SHUFFLE_WINDOW)
            self.store.add_event(
                job, event_type, int(now), due, 2 if settings.webhook_duplicates else 1
            )
        for event in self.store.take_due_events(now):
            self._queue.put(event)

    def _deliver_loop(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self.deliver(event)
            except Exception as exc:
                self.stats.note_error(f"webhook delivery: {exc!r}")
                self.store.finish_event(event.id, state="pending", due=time.time() + 1)

    def deliver(self, event: Event) -> None:
        url, secret = self.settings.webhook_url, self.settings.webhook_secret
        if not url or not secret:
            # Endpoint removed meanwhile: keep the event until one is configured (or reset).
            self.store.finish_event(event.id, state="pending", due=time.time() + 0.5)
            return
        timestamp = int(time.time())
        signature = signing_key(secret).sign(
            event.webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), event.payload
        )
        request = urllib.request.Request(
            url,
            data=event.payload.encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
                "webhook-id": event.webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature,
            },
        )
        ok = False
        try:
            with _opener.open(request, timeout=DELIVERY_TIMEOUT) as response:
                response.read()
                ok = 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            ok = False
        self.stats.webhook_attempt(ok)
        now = time.time()
        if ok:
            left = event.sends_left - 1
            if left > 0:  # webhook_duplicates: the same delivery again, same webhook-id
                self.store.finish_event(
                    event.id,
                    state="pending",
                    sends_left=left,
                    due=now + random.uniform(*DUPLICATE_GAP),
                )
            else:
                self.store.finish_event(event.id, state="done", sends_left=0, due=now)
            return
        attempts = event.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            self.store.finish_event(event.id, state="failed", attempts=attempts, due=now)
        else:
            backoff = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
            self.store.finish_event(
                event.id,
                state="pending",
                attempts=attempts,
                due=now + backoff * random.uniform(0.8, 1.2),
            )
