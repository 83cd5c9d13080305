"""The row `lifecycle.apply_snapshot` reads and writes, at the tracker's rate.

A tracker makes a hundred status reads a second; each reads its row under a lock and writes
what changed. Loading the whole row (sixty columns) with its provider, and saving every
column back, cost more CPU than the HTTP call itself (bench/p5_worker_scale.py), so the
tracker's read loads only what apply_snapshot uses, with SQL made once, and the write sends
only the columns that changed.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection

from jobs.models import Provider, StatusChange, Video

# Every column apply_snapshot (and what it calls: _finish, the charge, history) reads or
# writes. A status read loads only these, without the provider join when the tracker brings
# the provider along: the whole row with its provider cost more than the HTTP call did.
SNAPSHOT_FIELDS = """provider owner submission video_id status progress model size seconds
    prompt created_at completed_at expires_at remixed_from_video_id error_code error_message
    content_url poll_errors last_error last_polled_at next_poll_at asset_state notify_pending
    review_state""".split()


def locked_for_snapshot(video_id: int, via: str, provider: Provider | None) -> Video:
    """The row apply_snapshot works on, locked; its provider comes along (next_poll_delay
    reads it), but only the video row is locked."""
    if via != StatusChange.Via.POLL:  # not the tracker's read: the whole row, and its provider
        rows = Video.objects.select_for_update(of=("self",)).select_related("provider")
        return rows.get(pk=video_id)
    # The tracker's read, a hundred a second: its SQL is made once (the ORM's compiling cost
    # as much as the query), and the provider it brings along saves a join (or the query).
    video = next(iter(Video.objects.raw(_snapshot_sql(), [video_id])), None)
    if video is None:
        raise Video.DoesNotExist(f"No video {video_id}")
    video.provider = provider or Provider.objects.get(pk=video.provider_id)
    return video


@functools.cache
def _snapshot_sql() -> str:
    quote, meta = connection.ops.quote_name, Video._meta
    names = [meta.pk.name, *SNAPSHOT_FIELDS]
    columns = [quote(f.column) for f in meta.concrete_fields if f.column and f.name in names]
    lock = connection.ops.for_update_sql() if connection.features.has_select_for_update else ""
    key = quote(meta.pk.column or "id")
    return f"SELECT {', '.join(columns)} FROM {quote(meta.db_table)} WHERE {key} = %s {lock}"


def save_changed(video: Video, before: dict[str, Any]) -> None:
    """Write only the columns that changed: an UPDATE of three columns, not of sixty. Not
    save(): no signals listen, it costs a third less, and VideoQuerySet.update moves
    `updated_at` only when a column a page shows changed (not for when to look next)."""
    changed = {name: getattr(video, name) for name in before}
    changed = {name: value for name, value in changed.items() if value != before[name]}
    if changed:
        Video.objects.filter(pk=video.pk).update(**changed)
