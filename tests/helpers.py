"""Shortcuts the tests share: one tracker step, and raw imports."""

from __future__ import annotations

from jobs import tracker
from jobs.models import Provider, Video
from jobs.services.imports import adopt, sync_provider


def poll_due_videos(*, limit: int = 50) -> int:
    """One tracker step in this thread: claim due videos and process them."""
    claimed = tracker.claim_work(limit=limit)  # as track_videos claims
    for claim in claimed:
        tracker.process_claimed(video_id=claim.pk, claim=claim)
    return len(claimed)


def import_by_id(*, provider: Provider, video_id: str) -> tuple[Video, bool]:
    """Adopt one job as it is, without following its sources (import_one does that)."""
    return adopt(provider, provider.client().retrieve(video_id))


def sync_from_provider(*, provider: Provider, limit: int = 100) -> tuple[int, int]:
    result = sync_provider(provider=provider, limit=limit)
    return result.seen, result.new
