"""Shortcuts the tests share: one tracker step, raw imports, a finished job at a stand-in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

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


def stand_in_row(
    base_url: str, owner: Any, *, provider_name: str = "Stand-in", **fields: Any
) -> Video:
    """A job completed at the provider (a stand-in server at base_url), its files not yet
    archived and due for the tracker now; fields override any column."""
    provider = Provider.objects.create(
        name=provider_name, base_url=base_url, api_key_env="SIMULATOR_API_KEY"
    )
    columns: dict[str, Any] = {
        "video_id": "video_standin",
        "model": "sora-2",
        "prompt": "a lighthouse at dusk",
        "size": "64x48",
        "seconds": "4",
        "status": Video.Status.COMPLETED,
        "progress": 100,
        "submission": Video.Submission.IMPORTED,
        "expires_at": timezone.now() + timedelta(hours=1),
        "next_poll_at": timezone.now(),
    }
    return Video.objects.create(provider=provider, owner=owner, **(columns | fields))
