"""Reads for batches and retries: a batch's members and summary, the Batches page, and the
columns the table and batch pages add to each row (its charge, its retry)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from jobs.models import Batch, Charge, Video


@dataclass(frozen=True)
class BatchSummary:
    total: int
    waiting: int
    running: int
    completed: int
    failed: int
    unconfirmed: int  # waiting for their owner to decide: send again or give up
    progress: int  # mean percent over all jobs
    cost: Decimal  # what was charged (failed ones cost nothing)
    playable: tuple[int, ...] = ()  # archived ones, for "compare the finished ones"
    archiving: int = 0  # completed, files not yet copied: the page keeps polling for them
    cancelled: int = 0
    retryable: int = 0  # failed, not retried yet: what "Retry all failed" would send

    @property
    def active(self) -> bool:
        return self.waiting + self.running + self.archiving > 0


def with_retries(qs: QuerySet[Video]) -> QuerySet[Video]:
    """Rows as the table and batch pages show them: each with its charge and the pk of its
    retry (`retried_as`, None if not retried), in the same query."""
    retry = Video.objects.filter(retry_of=OuterRef("pk")).order_by().values("pk")[:1]
    return qs.select_related("charge").annotate(retried_as=Subquery(retry))


def charged(video: Video) -> Decimal:
    """What this job was charged: its Charge; nothing for a failed one, whatever was written."""
    if video.status_key == "failed":
        return Decimal("0")
    try:
        return video.charge.amount
    except Charge.DoesNotExist:
        return video.cost_estimate


def batch_videos(batch: Batch) -> list[Video]:
    videos: list[Video] = list(
        with_retries(batch.videos.select_related("provider", "owner", "source")).order_by(
            "requested_at", "pk"
        )
    )
    for video in videos:
        # An attribute for the template, which cannot call retry_key() with an argument.
        video.retry_key = retry_key(video, 0)  # type: ignore[attr-defined]
    return videos


def summarise_batch(videos: list[Video]) -> BatchSummary:
    """Counts over each job's latest attempt: a failed job that was retried counts as its
    retry does (the retry is a member of the same batch), so two retried failures that then
    completed read "2 of 2 completed", not "2 failed". Cost counts every attempt's charge."""
    retried = {v.retry_of_id for v in videos if v.retry_of_id}
    latest = [v for v in videos if v.pk not in retried]
    counts = {"waiting": 0, "running": 0, "completed": 0, "failed": 0, "unconfirmed": 0}
    cancelled = 0
    for v in latest:
        key = v.status_key
        if key == Video.Status.CANCELLED:
            cancelled += 1
        else:
            counts["running" if key in Video.ACTIVE else key] += 1
    cost = sum((charged(v) for v in videos), Decimal("0"))
    progress = round(sum(v.progress for v in latest) / len(latest)) if latest else 0
    playable = tuple(v.pk for v in videos if v.playable)
    archiving = sum(1 for v in latest if v.status_key == "completed" and v.is_archiving)
    retryable = sum(1 for v in latest if v.status == Video.Status.FAILED)
    return BatchSummary(
        total=len(latest),
        progress=progress,
        cost=cost,
        playable=playable,
        archiving=archiving,
        cancelled=cancelled,
        retryable=retryable,
        **counts,
    )


@dataclass(frozen=True)
class BatchRow:
    batch: Batch
    summary: BatchSummary


def batches_for_list(*, user: User, mine: bool) -> QuerySet[Batch]:
    """The Batches page: newest first, each with its members (and their charges) prefetched,
    so a page of batches is three queries however many jobs they hold."""
    qs = Batch.objects.select_related("owner", "source").order_by("-created_at", "-pk")
    if mine:
        qs = qs.filter(owner=user)
    members = with_retries(Video.objects.all()).order_by("requested_at", "pk")
    return qs.prefetch_related(Prefetch("videos", queryset=members))


def batch_rows(batches: Iterable[Batch]) -> list[BatchRow]:
    return [BatchRow(b, summarise_batch(list(b.videos.all()))) for b in batches]


def retry_key(video: Video, retries: int) -> uuid.UUID:
    """The Retry button's key: stable until a retry exists, so a double click (or a re-render
    by the poll between two clicks) still makes exactly one new job."""
    return uuid.uuid5(video.idempotency_key, f"retry-{retries}")
