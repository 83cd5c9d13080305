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


# How sure of the finish a read must be to aim at it: the estimate's spread from the rate
# (seconds); wider, and one more read first, on a longer baseline, makes the next one sure.
AIM_SLACK = 0.5
# Past the latest predicted finish: the provider's clock and ours, and its answer's way back.
LANDING = 0.05


def next_poll_delay(
    video: Video,
    remote: RemoteVideo,
    *,
    old_status: str,
    old_progress: int,
    previous: datetime | None,
) -> float:
    """Adaptive: few reads while far from done, and one that lands just after the finish.

    With webhooks the provider tells us when a job finishes, so polling is only a slow fallback.
    The provider's own `openai-poll-after-ms` is a floor for the reads on the way, which only
    learn the rate; the read aimed at the predicted finish is not held back by it (a floor
    there left a read at 99 % followed by the next one a whole hint later, bench/p2).
    """
    low, high = settings.POLL_MIN_SECONDS, settings.POLL_MAX_SECONDS
    if video.provider.webhooks_enabled:
        return float(settings.POLL_WEBHOOK_SECONDS)
    floor = max(low, remote.poll_after or 0.0)
    estimate = _estimate(remote, old_status, old_progress, previous)
    if estimate is None:  # queued, just started, or not moving: nothing to aim at yet
        return float(min(max(low * 2, floor), high))
    eta, spread = estimate
    # A read on the way: before the earliest finish the rate allows, at least half-way there.
    on_the_way = max(eta - 2 * spread, eta / 2, floor)
    if spread <= AIM_SLACK or on_the_way >= eta - spread:
        # Aim past the latest finish the rate allows. The reading itself is a whole percent:
        # `eta` counts from the bottom of it, so the finish is never later than that.
        return float(min(eta + spread + LANDING, high))
    return float(min(on_the_way, high))


def _estimate(
    remote: RemoteVideo, old_status: str, old_progress: int, previous: datetime | None
) -> tuple[float, float] | None:
    """(seconds left, how far off that may be from the rate), from the progress made since
    the previous read; None when there is no rate to go by.

    Not from creation: that would count the time spent queued as rendering and predict a
    finish far too late (measured in bench/p2_provider_load.py: 1.5× the reads of a naive loop).
    Both readings are whole percents, so the points gained are known to ±1: the rate to
    1/gained of itself, and the time left as well.
    """
    moving = Video.Status.IN_PROGRESS
    if remote.status != moving or old_status != moving or previous is None:
        return None
    elapsed = (timezone.now() - previous).total_seconds()
    gained = remote.progress - old_progress
    if elapsed <= 0 or gained <= 0:
        return None
    eta = (100 - remote.progress) * elapsed / gained
    return eta, eta / gained
