"""Standard Webhooks deliveries of `video.completed` / `video.failed` events.

A scanner notices jobs whose terminal time has passed (the lifecycle is clock-driven, so
nothing else "happens" when a job finishes) and stores one event per job. Events live in
SQLite, so a delivery survives a restart and keeps its webhook-id across retries and
duplicates, which is what receivers dedupe on.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from standardwebhooks import Webhook

from . import dispatch
from .store import Event


def signing_key(secret: str) -> Webhook:
    """OpenAI rule: a `whsec_` secret is base64 after the prefix, anything else is raw UTF-8."""
    if secret.startswith("whsec_"):
        return Webhook(secret)
    return Webhook(secret.encode("utf-8"))


class WebhookDispatcher(dispatch.Dispatcher[Event]):
    def start(self) -> None:
        self.store.requeue_stuck_events()
        super().start()

    def tick(self, now: float) -> None:
        settings = self.settings
        for job in self.store.claim_finished(now):
            if not settings.webhook_url:
                continue  # like OpenAI: events only go to an endpoint configured at the time
            event_type = "video.failed" if job.fail_at is not None else "video.completed"
            due = dispatch.first_due(settings, now)
            self.store.add_event(job, event_type, int(now), due, dispatch.sends(settings))
        for event in self.store.take_due_events(now):
            self.enqueue(event)

    def try_later(self, item: Event, due: float) -> None:
        self.store.finish_event(item.id, state="pending", due=due)

    def deliver(self, item: Event) -> None:
        event = item
        url, secret = self.settings.webhook_url, self.settings.webhook_secret
        if not url or not secret:
            # Endpoint removed meanwhile: keep the event until one is configured (or reset).
            self.try_later(event, time.time() + 0.5)
            return
        timestamp = int(time.time())
        signature = signing_key(secret).sign(
            event.webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), event.payload
        )
        headers = {
            "User-Agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
            "webhook-id": event.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        ok = dispatch.post(url, event.payload.encode("utf-8"), headers, self.stats)
        now = time.time()
        if ok:
            left = event.sends_left - 1
            if left > 0:  # webhook_duplicates: the same delivery again, same webhook-id
                self.store.finish_event(
                    event.id, state="pending", sends_left=left, due=dispatch.duplicate_due(now)
                )
            else:
                self.store.finish_event(event.id, state="done", sends_left=0, due=now)
            return
        attempts = event.attempts + 1
        due = dispatch.retry_due(attempts, now)
        if due is None:
            self.store.finish_event(event.id, state="failed", attempts=attempts, due=now)
        else:
            self.store.finish_event(event.id, state="pending", attempts=attempts, due=due)
