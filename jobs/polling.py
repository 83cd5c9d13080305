"""When to read a video's status next: adaptive from its progress, or backing off.

Pure timing (settings and the row, no writes): lifecycle.apply_snapshot and back_off use it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from jobs.models import Video
from jobs.provider.schema import RemoteVideo


def back_off_delay(errors: int, retry_after: float | None = None) -> float:
    """Seconds to wait after `errors` failures (or unanswered reads) in a row: exponential,
    or what the provider asked for."""
    delay = min(settings.POLL_MIN_SECONDS * 2**errors, settings.POLL_MAX_SECONDS * 4)
    if retry_after is not None:
        delay = max(delay if errors > 3 else 0, retry_after)
    return float(delay)


def next_poll_delay(
    video: Video,
    remote: RemoteVideo,
    *,
    old_status: str,
    old_progress: int,
    previous: datetime | None,
) -> float:
    """Adaptive: rare while far from done, sooner as completion nears.

    With webhooks the provider tells us when a job finishes, so polling is only a slow fallback.
    The provider's own `openai-poll-after-ms` is a floor: asking sooner only spends its quota.
    """
    low, high = settings.POLL_MIN_SECONDS, settings.POLL_MAX_SECONDS
    if video.provider.webhooks_enabled:
        return float(settings.POLL_WEBHOOK_SECONDS)
    floor = max(low, remote.poll_after or 0.0)
    eta = _eta_seconds(remote, old_status, old_progress, previous)
    if eta is None:
        delay = low * 2
    else:
        # Aim just past the predicted finish, but re-check at 3/4 of a long wait in case the
        # estimate is off; near the end this converges to the minimum interval.
        delay = eta * 0.75 if eta > 4 * low else eta + 0.2
    return float(min(max(delay, floor), high))


def _eta_seconds(
    remote: RemoteVideo, old_status: str, old_progress: int, previous: datetime | None
) -> float | None:
    """Seconds left, from the progress made since the previous read.

    Not from creation: that would count the time spent queued as rendering and predict a
    finish far too late (measured in bench/p2_provider_load.py: 1.5× the reads of a naive loop).
    """
    moving = Video.Status.IN_PROGRESS
    if remote.status != moving or old_status != moving or previous is None:
        return None
    elapsed = (timezone.now() - previous).total_seconds()
    gained = remote.progress - old_progress
    if elapsed <= 0 or gained <= 0:
        return None
    return (100 - remote.progress) * elapsed / gained
