"""OpenRouter's video webhooks: `video.generation.{completed,failed,cancelled,expired}`.

As OpenRouterTeam/skills `skills/openrouter-video/SKILL.md` (and OpenRouter's webhook guide)
describe them: a POST to the job's `callback_url`, else to the workspace's default (here
`--webhook-url`), with
    X-OpenRouter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>,<raw body>">
    X-OpenRouter-Idempotency-Key: <job id>-<status>
signed with the workspace secret (`--webhook-secret`, its UTF-8 bytes as the key). The body is
`{"type", "created_at" (RFC 3339), "data": <the job as GET /videos/{id} shows it, plus model>}`.

Unlike the /v1 dialect's Standard Webhooks (`webhooks`), pending deliveries live in memory
only: a restart forgets them, and the receiver's poll is the fallback, as with OpenRouter.
Retries, duplicates, delay and shuffle follow the same settings and schedule.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from . import dispatch
from .config import Settings
from .lifecycle import Job
from .openrouter_models import job_to_api, model_for, status_of
from .stats import Stats
from .store import Store

EXPIRY_SCAN_INTERVAL = 0.25
MAX_WATCHED = 10_000  # completed jobs watched for their expiry; the oldest go first


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-OpenRouter-Signature value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp},".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass
class Delivery:
    url: str | None  # None: the configured --webhook-url at the time of sending
    job_id: str
    status: str
    body: bytes
    attempts: int = 0
    sends_left: int = 1


class OpenRouterWebhooks(dispatch.Dispatcher[Delivery]):
    """`register` is called by each create."""

    label = "openrouter webhook"

    def __init__(self, store: Store, settings: Settings, stats: Stats) -> None:
        super().__init__(store, settings, stats)
        self._lock = threading.Lock()
        # store id -> (callback_url, the simulator's origin as the client saw it)
        self._jobs: dict[str, tuple[str | None, str]] = {}
        # store id -> (callback_url, origin) of completed jobs, until their output expires
        self._watched: dict[str, tuple[str | None, str]] = {}
        self._pending: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._last_expiry_scan = 0.0

    def register(self, store_id: str, callback_url: str | None, root: str) -> None:
        with self._lock:
            self._jobs[store_id] = (callback_url, root)

    def forget(self) -> None:
        """`POST /_sim/reset`: no delivery of a forgotten job goes out afterwards."""
        with self._lock:
            self._jobs.clear()
            self._watched.clear()
            self._pending.clear()

    def tick(self, now: float) -> None:
        for job in self.store.claim_finished(now):
            with self._lock:
                callback, root = self._jobs.pop(job.id, (None, ""))
            status = status_of(job, now)
            if status == "completed":
                with self._lock:
                    if len(self._watched) >= MAX_WATCHED:
                        self._watched.pop(next(iter(self._watched)))
                    self._watched[job.id] = (callback, root)
            self._announce(job, status, callback, root, now)
        if now - self._last_expiry_scan >= EXPIRY_SCAN_INTERVAL:
            self._last_expiry_scan = now
            self._scan_expiry(now)
        with self._lock:
            while self._pending and self._pending[0][0] <= now:
                self.enqueue(heapq.heappop(self._pending)[2])

    def _scan_expiry(self, now: float) -> None:
        with self._lock:
            watched = list(self._watched.items())
            registered = list(self._jobs)
        for store_id in registered:  # deleted by a reset before they ended
            if self.store.get(store_id) is None:
                with self._lock:
                    self._jobs.pop(store_id, None)
        for store_id, (callback, root) in watched:
            job = self.store.get(store_id)
            if job is None or status_of(job, now) == "expired":
                with self._lock:
                    self._watched.pop(store_id, None)
                if job is not None:
                    self._announce(job, "expired", callback, root, now)

    def _announce(self, job: Job, status: str, callback: str | None, root: str, now: float) -> None:
        if callback is None and not self.settings.webhook_url:
            return  # no callback_url and no workspace default: nobody to tell
        data = job_to_api(self.store, job, now, root or "http://127.0.0.1")
        model = model_for(job.model)
        data["model"] = model.id if model else job.model
        body = json.dumps(
            {
                "type": f"video.generation.{status}",
                "created_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
                "data": data,
            },
            separators=(",", ":"),
        ).encode()
        delivery = Delivery(callback, job.id, status, body, 0, dispatch.sends(self.settings))
        self.try_later(delivery, dispatch.first_due(self.settings, now))

    def try_later(self, item: Delivery, due: float) -> None:
        with self._lock:
            heapq.heappush(self._pending, (due, next(self._order), item))

    def deliver(self, item: Delivery) -> None:
        url = item.url or self.settings.webhook_url
        secret = self.settings.webhook_secret
        if not url or not secret:  # the default endpoint was removed meanwhile: wait for one
            self.try_later(item, time.time() + 0.5)
            return
        headers = {
            "User-Agent": "OpenRouter-Webhooks/1.0 (simulator)",
            "X-OpenRouter-Signature": signature(secret, int(time.time()), item.body),
            "X-OpenRouter-Idempotency-Key": f"{item.job_id}-{item.status}",
        }
        ok = dispatch.post(url, item.body, headers, self.stats)
        now = time.time()
        if ok:
            item.sends_left -= 1
            if item.sends_left > 0:  # webhook_duplicates: the same delivery again
                self.try_later(item, dispatch.duplicate_due(now))
            return
        item.attempts += 1
        due = dispatch.retry_due(item.attempts, now)
        if due is not None:
            self.try_later(item, due)
