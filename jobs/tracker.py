"""The tracker's unit of work: claim due videos, then submit, refresh or archive each one.

The database is the truth. Work is claimed by moving ``Video.next_poll_at`` into the future (a
lease) inside a short transaction; the HTTP call happens after the commit, never while a row lock
is held. If a worker dies, the lease runs out and another worker picks the row up again.
Both `manage.py track_videos` (a loop over many) and the task worker (one at a time) call here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs import lifecycle
from jobs.archive import archive_assets
from jobs.models import Provider, StatusChange, Video, VideoQuerySet
from jobs.provider.client import ProviderClient
from jobs.provider.errors import InvalidAnswer, NotFound, ProviderError, ProviderRateLimited
from jobs.submission import send_submission

log = logging.getLogger(__name__)


def _lease() -> datetime:
    return timezone.now() + timedelta(seconds=settings.TRACKER_LEASE_SECONDS)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed row, with what choosing its next step needs, read by the claim itself."""

    pk: int
    video_id: str
    reads_status: bool  # the next step is a status read (else: read the whole row first)
    provider: Provider


def _due(ids: Iterable[int] | None, archives: bool | None) -> VideoQuerySet:
    due = Video.objects.due(timezone.now())
    if ids is not None:
        due = due.filter(pk__in=list(ids))
    if archives is not None:
        due = due.archiving() if archives else due.not_archiving()
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    return due


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
        claimed = list(_due(ids, archives).values_list("pk", flat=True)[:limit])
        if claimed:
            Video.objects.filter(pk__in=claimed).update(next_poll_at=_lease())
    return claimed


def claim_work(*, limit: int, archives: bool | None = None) -> list[Claim]:
    """`claim_due` for the tracker's loop: each row with its step and its provider (one query
    for the batch), so that a status read needs no read of its row before the HTTP call."""
    with transaction.atomic():
        fields = ("pk", "provider_id", "video_id", "submission", "status")
        rows = list(_due(None, archives).values_list(*fields)[:limit])
        if rows:
            Video.objects.filter(pk__in=[row[0] for row in rows]).update(next_poll_at=_lease())
    providers = Provider.objects.in_bulk({row[1] for row in rows}) if rows else {}
    return [
        Claim(pk, video_id or "", _reads_status(submission, status), providers[provider])
        for pk, provider, video_id, submission, status in rows
    ]


def seconds_until_due(*, archives: bool | None = None) -> float | None:
    """How long until the next row of this kind falls due (claimed ones count as their lease
    ends), from the first entry of the `video_due` index; None when nothing is scheduled."""
    rows = Video.objects.filter(next_poll_at__isnull=False)
    if archives is not None:
        rows = rows.archiving() if archives else rows.not_archiving()
    due = rows.order_by("next_poll_at").values_list("next_poll_at", flat=True).first()
    return None if due is None else (due - timezone.now()).total_seconds()


def due_within(seconds: float, *, archives: bool | None = None) -> int:
    """How many rows of this kind are due now or within `seconds` (unclaimed: a claimed row's
    lease is further out): the tracker sizes its threads by it."""
    rows = Video.objects.filter(next_poll_at__lte=timezone.now() + timedelta(seconds=seconds))
    if archives is not None:
        rows = rows.archiving() if archives else rows.not_archiving()
    return rows.count()


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


def process_claimed(*, video_id: int, claim: Claim | None = None) -> None:
    """Do the next step for a video this worker holds the lease on (`claim`: as claimed)."""
    if claim is not None and claim.reads_status:
        try:
            read_status(claim.pk, claim.video_id, claim.provider)
        except Video.DoesNotExist:
            return  # deleted since it was claimed: nothing left to do
        except Exception as exc:  # never leave a claimed row without a next step
            log.exception("processing video %s failed", video_id)
            lifecycle.back_off(video_id, f"Internal error: {exc.__class__.__name__}")
        return
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


def _reads_status(submission: str, status: str) -> bool:
    """Sent, not halted, still moving at the provider: the next step is a status read."""
    stopped = submission in Video.WAITING or submission in Video.HALTED
    return not stopped and status in Video.ACTIVE


def refresh_video(video: Video, client: ProviderClient | None = None) -> None:
    read_status(video.pk, video.video_id or "", video.provider, client)


def read_status(
    pk: int, video_id: str, provider: Provider, client: ProviderClient | None = None
) -> None:
    """GET the job and write what it says (or why it could not be read) to its row."""
    client = client or provider.client()
    try:
        remote = client.retrieve(video_id)
    except NotFound:
        lifecycle.forget(video_id=pk)
    except InvalidAnswer as exc:  # not transient: asking again gets the same answer
        message = f"The provider's answer about this job could not be used: {exc.message}"
        lifecycle.fail_unusable_answer(video_id=pk, message=message, submitted=False)
    except ProviderRateLimited as exc:
        lifecycle.back_off(pk, f"Provider is rate-limiting: {exc}", exc.retry_after)
    except ProviderError as exc:  # down, or a key problem an admin can fix: keep trying
        lifecycle.back_off(pk, f"Could not reach the provider: {exc}")
    else:
        lifecycle.apply_snapshot(
            video_id=pk, remote=remote, via=StatusChange.Via.POLL, provider=provider
        )
