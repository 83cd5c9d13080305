"""In-memory request counters for /_sim/stats (tests and benchmarks assert on them)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

PER_VIDEO_KINDS = ("retrieve", "content", "remix", "delete")


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._per_video: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._faults: Counter[str] = Counter()
            self._jobs_created = 0
            self._webhooks = Counter[str]()
            self._errors: list[str] = []

    def request(self, route: str, video_id: str | None, kind: str | None) -> None:
        with self._lock:
            self._requests[route] += 1
            if video_id is not None and kind is not None:
                self._per_video[video_id][kind] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def job_created(self) -> None:
        with self._lock:
            self._jobs_created += 1

    def webhook_attempt(self, ok: bool) -> None:
        with self._lock:
            self._webhooks["attempts"] += 1
            self._webhooks["delivered" if ok else "failed_attempts"] += 1

    def note_error(self, message: str) -> None:
        with self._lock:
            self._errors = [*self._errors[-19:], message]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            per_video = {
                vid: {kind: counts.get(kind, 0) for kind in PER_VIDEO_KINDS}
                for vid, counts in self._per_video.items()
            }
            return {
                "requests": dict(self._requests),
                "total_requests": sum(self._requests.values()),
                "per_video": per_video,
                "jobs_created": self._jobs_created,
                "faults_injected": sum(self._faults.values()),
                "faults": dict(self._faults),
                "webhooks": {
                    "attempts": self._webhooks["attempts"],
                    "delivered": self._webhooks["delivered"],
                    "failed_attempts": self._webhooks["failed_attempts"],
                },
                "errors": list(self._errors),
            }
