"""The tracker's unit of work: claim due videos, then submit, refresh or archive each one.

The database is the truth. Work is claimed by moving ``Video.next_poll_at`` into the future (a
lease) inside a short transaction; the HTTP call happens after the commit, never while a row lock
is held. If a worker dies, the lease runs out and another worker picks the row up again.
Both `manage.py track_videos` (a loop over many) and the task worker (one at a time) call here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs import lifecycle
from jobs.archive import archive_assets
from jobs.models import StatusChange, Video
from jobs.provider.client import ProviderClient
from jobs.provider.errors import InvalidAnswer, NotFound, ProviderError, ProviderRateLimited
from jobs.submission import send_submission

log = logging.getLogger(__name__)


def _lease() -> datetime:
    return timezone.now() + timedelta(seconds=settings.TRACKER_LEASE_SECONDS)


def claim_due(
    *, limit: int, ids: Iterable[int] | None = None, archives: bool | None = None
) -> list[int]:
    """Claim up to ``limit`` due videos for this worker and return their ids.

    ``archives`` picks one kind of work (True: downloads, False: everything else), so the
    tracker can keep slow downloads from taking every thread. SELECT … FOR UPDATE SKIP LOCKED
    (PostgreSQL) lets two trackers take disjoint batches; on SQLite the IMMEDIATE transaction
    serialises claimers instead. Either way the lease written here means nobody else touches
    these rows until it runs out.
    """
    with transaction.atomic():
        due = Video.objects.due(timezone.now())
        if ids is not None:
            due = due.filter(pk__in=list(ids))
        if archives is not None:
            due = due.archiving() if archives else due.not_archiving()
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        claimed = list(due.values_list("pk", flat=True)[:limit])
        if claimed:
            Video.objects.filter(pk__in=claimed).update(next_poll_at=_lease())
    return claimed


def release_claims(*, ids: Iterable[int]) -> None:
    """Give back claimed rows this worker will not process (it is stopping): due again now."""
    ids = list(ids)
    if ids:
        Video.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())


def advance_video(*, video_id: int) -> bool:
    """Claim one video if it is due and do whatever it needs next. Used by the task worker."""
    if not claim_due(limit=1, ids=[video_id]):
        return False
    process_claimed(video_id=video_id)
    return True


def archive_is_due(video_id: int) -> bool:
    """Completed just now, files still to fetch: worth a task of its own, not a tracker tick."""
    return Video.objects.filter(pk=video_id).archiving().due(timezone.now()).exists()


def process_claimed(*, video_id: int) -> None:
    """Do the next step for a video this worker holds the lease on."""
    video = Video.objects.select_related("provider", "source").get(pk=video_id)
    try:
        if video.submission in Video.WAITING:
            send_submission(video)
        elif video.submission in Video.HALTED:
            lifecycle.settle(video.pk)
        elif video.status in Video.ACTIVE:
            refresh_video(video)
        elif video.is_archiving:
            archive_assets(video)
        else:
            lifecycle.settle(video.pk)
    except Exception as exc:  # never leave a claimed row without a next step
        log.exception("processing video %s failed", video_id)
        lifecycle.back_off(video.pk, f"Internal error: {exc.__class__.__name__}")


def refresh_video(video: Video, client: ProviderClient | None = None) -> None:
    client = client or video.provider.client()
    try:
        remote = client.retrieve(video.video_id or "")
    except NotFound:
        lifecycle.forget(video_id=video.pk)
    except InvalidAnswer as exc:  # not transient: asking again gets the same answer
        message = f"The provider's answer about this job could not be used: {exc.message}"
        lifecycle.fail_unusable_answer(video_id=video.pk, message=message, submitted=False)
    except ProviderRateLimited as exc:
        lifecycle.back_off(video.pk, f"Provider is rate-limiting: {exc}", exc.retry_after)
    except ProviderError as exc:  # down, or a key problem an admin can fix: keep trying
        lifecycle.back_off(video.pk, f"Could not reach the provider: {exc}")
    else:
        lifecycle.apply_snapshot(video_id=video.pk, remote=remote, via=StatusChange.Via.POLL)
