"""Copying a finished video's files into our storage before the provider's links expire."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from jobs import lifecycle
from jobs.models import Video
from jobs.provider.client import ProviderClient
from jobs.provider.errors import AssetsExpired, NotFound, ProviderError, ProviderRateLimited

VARIANTS = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}
PARTIAL_DIR = ".partial"  # under MEDIA_ROOT, so a finished file is moved, not copied


def archive_assets(video: Video, client: ProviderClient | None = None) -> None:
    """Copy every variant into our storage; the row says archived only when all are complete."""
    client = client or video.provider.client()
    partial_dir = Path(settings.MEDIA_ROOT) / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    saved: dict[str, str] = {}
    try:
        for variant, ext in VARIANTS.items():
            saved[variant] = _download_variant(client, video, variant, ext, partial_dir)
    except AssetsExpired:
        delete_files(saved.values())
        lifecycle.mark_assets_expired(video_id=video.pk)
        return
    except NotFound:
        delete_files(saved.values())
        lifecycle.forget(video_id=video.pk)
        return
    except ProviderError as exc:
        delete_files(saved.values())
        if video.expires_at and video.expires_at < timezone.now():
            lifecycle.mark_assets_expired(video_id=video.pk)
        else:
            lifecycle.back_off(
                video.pk,
                f"Archiving failed, will retry: {exc}",
                exc.retry_after if isinstance(exc, ProviderRateLimited) else None,
            )
        return
    with transaction.atomic():
        row = Video.objects.select_for_update().get(pk=video.pk)
        row.video_file.name = saved["video"]
        row.thumbnail_file.name = saved["thumbnail"]
        row.spritesheet_file.name = saved["spritesheet"]
        row.asset_state = Video.Assets.ARCHIVED
        row.archived_at = timezone.now()
        row.next_poll_at = None
        row.poll_errors, row.last_error = 0, ""
        row.save()


def _download_variant(
    client: ProviderClient, video: Video, variant: str, ext: str, partial_dir: Path
) -> str:
    """Stream one variant to a temporary file, then move it into storage under a fixed name."""
    with tempfile.NamedTemporaryFile(
        dir=partial_dir, prefix=f"{video.pk}-{variant}-", suffix=".part", delete=False
    ) as tmp:
        tmp_path = Path(tmp.name)
        try:
            client.download(video.video_id or "", variant, tmp)
        except BaseException:
            tmp.close()
            tmp_path.unlink(missing_ok=True)
            raise
    name = f"archive/{video.pk}/{variant}.{ext}"
    target = Path(default_storage.path(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(tmp_path, target)  # same filesystem: an atomic rename, never a half file
    return name


def delete_files(names: Iterable[str]) -> None:
    for name in names:
        default_storage.delete(name)


def remove_stale_partials(*, older_than: float | None = None) -> int:
    """Delete temporary downloads left by a worker that died mid-download."""
    partial_dir = Path(settings.MEDIA_ROOT) / PARTIAL_DIR
    if not partial_dir.exists():
        return 0
    cutoff = timezone.now().timestamp() - (
        settings.TRACKER_LEASE_SECONDS if older_than is None else older_than
    )
    removed = 0
    for path in partial_dir.glob("*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
