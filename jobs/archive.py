"""Copying a finished video's files into our storage before the provider's links expire.

"Archived" means checked. Every variant (video, thumbnail, spritesheet) is downloaded to a
local temporary file under MEDIA_ROOT/.partial and verified (jobs.lib.media_check); only when
all three pass are they stored (jobs.lib.storage: moved into place on local disk, uploaded to an
S3-compatible bucket), together, and the row marked archived. Any failure removes every file
the attempt made, stored ones included, so nothing half-done holds space or looks playable.
Where the provider does not serve the poster or spritesheet (LiteLLM answers the MP4 for every
variant), they are made here from the downloaded video (jobs.lib.previews) and checked alike:
one download per video.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import lifecycle
from jobs.lib import media_check, previews, storage
from jobs.models import Video
from jobs.provider.client import ProviderClient
from jobs.provider.errors import (
    AssetsExpired,
    InvalidAnswer,
    NotFound,
    NotReady,
    NoVideosApi,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    VariantUnsupported,
)

log = logging.getLogger(__name__)

VARIANTS = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}
FILE_FIELDS = {
    "video": "video_file",
    "thumbnail": "thumbnail_file",
    "spritesheet": "spritesheet_file",
}
WORDS = {"video": "video file", "thumbnail": "thumbnail", "spritesheet": "spritesheet"}
PREVIEWS = ("thumbnail", "spritesheet")
PARTIAL_DIR = storage.PARTIAL_DIR  # under MEDIA_ROOT: on local disk a finished file is moved
SWEEP_EVERY = 60.0  # seconds between one process's looks for a dead worker's downloads
DISK_FULL_MESSAGE = "The server's disk is full; archiving will resume when there is space."
DISK_FULL_RETRY = 300.0  # seconds: space rarely comes back within the usual back-off
ASK_AGAIN = "Use Archive again in the admin once the provider is fixed."


class VerificationFailed(Exception):
    """A downloaded file is not what it claims to be; `problem` is media_check's sentence."""

    def __init__(self, variant: str, problem: str) -> None:
        super().__init__(f"the {WORDS[variant]} failed verification: {problem}")
        self.variant = variant
        self.problem = problem


class _ProcessState:
    """What one process remembers between archives (threads share it, hence the lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_sweep = float("-inf")  # time.monotonic() of the last stale-partials sweep
        self.disk_full = False  # logged once; cleared by the next archive that fits


_state = _ProcessState()


class _Attempt:
    """Every file one archive attempt has made, so a failure can remove them all."""

    def __init__(self, video: Video) -> None:
        self.video = video
        # Each attempt stores under its own folder: two attempts racing on one video (a download
        # that outlasted its lease) never overwrite or delete each other's files.
        self.folder = f"archive/{video.pk}/{uuid.uuid4().hex[:12]}"
        self.variant = ""  # the variant in hand, for the failure's message
        self.written = 0  # bytes of it on disk when the failure came
        self.temporaries: dict[str, Path] = {}
        self.moved: dict[str, str] = {}  # variant -> storage name, recorded before it is stored
        self.made_here: set[str] = set()  # previews made from the video, not downloaded
        self.grid: previews.Grid | None = None  # the spritesheet's layout, when known

    def discard(self) -> None:
        """Remove this attempt's own files; the row never points at them unless it won."""
        for path in self.temporaries.values():
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.exception("could not remove %s", path)
        for name in self.moved.values():
            try:
                default_storage.delete(name)
            except Exception:  # a bucket that is down now too: log it, remove the rest
                log.exception("could not remove %s from the archive's storage", name)
        if self.moved:
            storage.remove_folder(self.folder)
        self.temporaries.clear()
        self.moved.clear()


def archive_assets(video: Video, client: ProviderClient | None = None) -> None:
    """Download, verify and store every variant; the row says archived only when all are."""
    client = client or video.provider.client()
    remove_stale_partials(at_most_every=SWEEP_EVERY)
    attempt = _Attempt(video)
    try:
        _fetch(client, attempt, "video")
        for variant in PREVIEWS:
            if not video.provider.serves_variants or not _fetch_preview(client, attempt, variant):
                _make_here(attempt, variant)
        if "spritesheet" not in attempt.made_here:  # read off the provider's, where it fits
            attempt.grid = previews.grid_of(
                attempt.temporaries["spritesheet"], attempt.temporaries["thumbnail"], video.seconds
            )
        names = _move_into_place(attempt)
        if not _mark_archived(attempt, names):
            attempt.discard()  # deleted, or no longer waiting for files, while we downloaded
            return
    except Exception as exc:
        attempt.discard()
        _record_failure(attempt, exc)
        return
    except BaseException:  # interrupted: leave no files behind, then go on stopping
        attempt.discard()
        raise
    if _state.disk_full:
        with _state.lock:
            if _state.disk_full:
                _state.disk_full = False
                log.warning("disk space is available again: archiving resumed")


def _fetch(client: ProviderClient, attempt: _Attempt, variant: str) -> None:
    """Stream one variant to a temporary file, make it durable, and verify it."""
    attempt.variant, attempt.written = variant, 0
    partial_dir = Path(settings.MEDIA_ROOT) / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    for done in attempt.temporaries.values():
        # Still in use: a sweep in another process removes what has not changed for a lease.
        os.utime(done)
    with _open_temporary(partial_dir, f"{attempt.video.pk}-{variant}-") as tmp:
        path = Path(tmp.name)
        attempt.temporaries[variant] = path
        try:
            result = client.download(
                attempt.video.video_id or "",
                variant,
                tmp,
                max_bytes=settings.MAX_ASSET_BYTES,
                # Where the provider's object names the finished file's URL, it is there.
                url=(attempt.video.content_url or None) if variant == "video" else None,
            )
            tmp.flush()
            # On a full disk the kernel may report it only here (delayed allocation), not at
            # write(): better now than as a file that turns out shorter after a crash.
            os.fsync(tmp.fileno())
        finally:
            attempt.written = _size(path)
    problem = media_check.check_file(variant, path, expected=result.expected)
    if problem:
        raise VerificationFailed(variant, problem)


def _fetch_preview(client: ProviderClient, attempt: _Attempt, variant: str) -> bool:
    """Download a poster or spritesheet; False when the provider does not serve that variant
    (the client's VariantUnsupported: 400/404/415, or not an image) or answers it with the MP4
    itself, so it is made here instead. A missing variant never forgets the whole job."""
    try:
        _fetch(client, attempt, variant)
    except (VariantUnsupported, NotFound, NoVideosApi) as exc:  # NoVideosApi: a bare 404
        log.info("video %s: no %s from the provider (%s)", attempt.video.pk, variant, exc)
    except VerificationFailed:
        if not previews.looks_like_mp4(attempt.temporaries[variant]):
            raise
        log.info("video %s: the provider answered its %s with the MP4", attempt.video.pk, variant)
    else:
        return True
    attempt.temporaries.pop(variant).unlink(missing_ok=True)
    return False


def _make_here(attempt: _Attempt, variant: str) -> None:
    """Make the poster or the spritesheet from the downloaded video, and check it like a
    download; the spritesheet's grid is recorded, so scrubbing need not guess."""
    attempt.variant, attempt.written = variant, 0
    video = attempt.temporaries["video"]
    with _open_temporary(video.parent, f"{attempt.video.pk}-{variant}-") as tmp:
        path = attempt.temporaries[variant] = Path(tmp.name)
    try:
        grid = previews.make(variant, video, path)
    except previews.PreviewFailed as exc:  # counted like a download that fails its check
        raise previews.PreviewFailed(
            f"the {WORDS[variant]} could not be made from the video: {exc}"
        ) from exc
    attempt.grid = grid or attempt.grid
    attempt.made_here.add(variant)
    attempt.written = _size(path)
    if problem := media_check.check_file(variant, path):
        raise VerificationFailed(variant, problem)


def _open_temporary(partial_dir: Path, prefix: str) -> IO[bytes]:
    """A new temporary file for one download (the tests replace it to simulate a full disk)."""
    return tempfile.NamedTemporaryFile(dir=partial_dir, prefix=prefix, suffix=".part", delete=False)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _move_into_place(attempt: _Attempt) -> dict[str, str]:
    """All verified: store each temporary under its fixed name (on local disk a rename)."""
    names: dict[str, str] = {}
    for variant, ext in VARIANTS.items():
        attempt.variant = variant
        name = f"{attempt.folder}/{variant}.{ext}"
        # Recorded first: an upload that fails halfway is removed with the rest.
        attempt.moved[variant] = name
        _move(attempt.temporaries[variant], name)
        del attempt.temporaries[variant]
        names[variant] = name
    return names


def _move(source: Path, name: str) -> None:
    storage.store(source, name)  # a reader sees the whole file or none, on disk and in a bucket


def _mark_archived(attempt: _Attempt, names: dict[str, str]) -> bool:
    """The one write that makes the row archived; False if the row is no longer ours to mark.

    The files of an earlier archive (before "Archive again") are removed once the row points
    at the new ones, so a re-archive leaves nothing behind.
    """
    video = attempt.video
    with transaction.atomic():
        row = Video.objects.select_for_update().filter(pk=video.pk).first()
        if row is None or row.asset_state != Video.Assets.PENDING:
            return False
        old = [str(getattr(row, FILE_FIELDS[v]).name) for v in names]
        Video.objects.filter(pk=video.pk).update(
            **{FILE_FIELDS[variant]: name for variant, name in names.items()},
            asset_state=Video.Assets.ARCHIVED,
            archived_at=timezone.now(),
            next_poll_at=None,
            poll_errors=0,
            archive_attempts=0,
            last_error="",
            sprite_grid=attempt.grid,
            previews_made_here=bool(attempt.made_here),
        )
    delete_files(name for name in old if name and name not in names.values())
    return True


def _record_failure(attempt: _Attempt, exc: Exception) -> None:
    """What the row says and when it is tried again, by what went wrong."""
    video, what = attempt.video, WORDS.get(attempt.variant, "files")
    if is_disk_full(exc):
        _disk_full(video)
    elif isinstance(exc, AssetsExpired):
        lifecycle.mark_assets_expired(video_id=video.pk)
    elif isinstance(exc, NotFound):
        lifecycle.forget(video_id=video.pk)
    elif isinstance(exc, InvalidAnswer):
        # Not transient: the same request gets the same answer, so do not wear the provider.
        mark_broken(video.pk, f"The provider's {what} could not be used: {exc}. {ASK_AGAIN}")
    elif isinstance(exc, previews.PreviewFailed):
        _count_failure(video, exc, lambda n: f"Tried {n} times: {exc}.")
    elif isinstance(exc, VerificationFailed):
        problem = exc.problem
        _count_failure(
            video, exc, lambda n: f"The {what} failed verification {n} times: {problem}."
        )
    elif isinstance(exc, NotReady):  # the provider is still finishing it: not a failure
        lifecycle.back_off(video.pk, f"The provider has not finished the {what} yet: {exc}")
    elif isinstance(exc, ProviderError):
        if video.expires_at and video.expires_at < timezone.now():
            lifecycle.mark_assets_expired(video_id=video.pk)
        elif isinstance(exc, ProviderUnavailable) and not isinstance(exc, ProviderRateLimited):
            if _broke_off(exc, attempt):  # answered, then the body failed: counted
                _count_failure(
                    video, exc, lambda n: f"The {what} download failed {n} times: {exc}."
                )
            else:  # never reached, or a 5xx: an outage, retried without counting
                lifecycle.back_off(video.pk, f"Archiving failed, will retry: {exc}")
        else:
            retry_after = exc.retry_after if isinstance(exc, ProviderRateLimited) else None
            lifecycle.back_off(video.pk, f"Archiving failed, will retry: {exc}", retry_after)
    elif (refused := storage.storage_problem(exc)) is not None:
        log.warning("could not store the %s of video %s: %s", what, video.pk, exc)
        lifecycle.back_off(video.pk, f"Could not store the {what}: {refused}; will retry.")
    elif isinstance(exc, OSError):
        log.exception("could not store the %s of video %s", what, video.pk)
        reason = exc.strerror or exc.__class__.__name__
        lifecycle.back_off(video.pk, f"Could not store the {what} on this server: {reason}")
    else:
        raise exc


def _broke_off(exc: ProviderUnavailable, attempt: _Attempt) -> bool:
    """The provider answered 2xx and the body then stopped short (or stalled past the
    deadline); not a refused connection or a 5xx, which are outages and are not counted."""
    answered = exc.status is not None and 200 <= exc.status < 300
    return answered or attempt.written > 0


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC (or a quota's EDQUOT), here or in what caused it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    return False


def _disk_full(video: Video) -> None:
    with _state.lock:
        first, _state.disk_full = not _state.disk_full, True
    if first:  # once per process while it lasts, not once per video per retry
        log.error("the disk under MEDIA_ROOT is full: archiving paused until there is space")
    lifecycle.back_off(video.pk, DISK_FULL_MESSAGE, DISK_FULL_RETRY)


def _count_failure(video: Video, exc: Exception, broken: Callable[[int], str]) -> None:
    """One more failed attempt in a row: back off; after ARCHIVE_MAX_ATTEMPTS say so on the
    row, and give up once the provider's copy has expired (or it never said when it would).

    `broken(n)` is the sentence for giving up after n attempts."""
    rows = Video.objects.filter(pk=video.pk)
    rows.update(archive_attempts=F("archive_attempts") + 1)
    attempts = rows.values_list("archive_attempts", flat=True).first()
    if attempts is None:
        return  # deleted meanwhile: nothing left to record on
    limit = settings.ARCHIVE_MAX_ATTEMPTS
    expires = rows.values_list("expires_at", flat=True).first()
    if attempts >= limit and expires is not None and expires > timezone.now():
        # Passing faults (a body cut short looks like a broken file) must not cost the
        # archive while the provider still has the files: keep trying, and say why on the row.
        lifecycle.back_off(
            video.pk,
            f"{broken(attempts)} Still trying until the provider's copy expires "
            f"({timezone.localtime(expires):%Y-%m-%d %H:%M %Z}).",
        )
    elif attempts >= limit:
        mark_broken(video.pk, f"{broken(attempts)} {ASK_AGAIN}")
    else:
        lifecycle.back_off(
            video.pk, f"Archiving failed (attempt {attempts} of {limit}), will retry: {exc}"
        )


def mark_broken(video_id: int, message: str) -> None:
    """Give up on archiving this video until someone asks again; `message` says why."""
    log.warning("video %s could not be archived: %s", video_id, message)
    Video.objects.filter(pk=video_id).update(
        asset_state=Video.Assets.BROKEN, next_poll_at=None, last_error=message[:1000]
    )


def stored_problems(video: Video) -> list[str]:
    """Re-check an archived video's stored files with the archiver's checks; [] when fine.
    From a bucket, each file is streamed to a local temporary copy for the check."""
    problems = []
    scratch = Path(settings.MEDIA_ROOT) / PARTIAL_DIR
    for variant in VARIANTS:
        name = str(getattr(video, FILE_FIELDS[variant]).name or "")
        if not name:
            problems.append(f"no {WORDS[variant]} is recorded")
            continue
        try:
            with storage.local_copy(name, scratch) as path:
                problem = media_check.check_file(variant, path)
        except FileNotFoundError:
            problems.append(f"the {WORDS[variant]} is missing ({name})")
            continue
        if problem:
            problems.append(f"the {WORDS[variant]} failed verification: {problem}")
    return problems


def delete_files(names: Iterable[str]) -> None:
    for name in names:
        default_storage.delete(name)


def remove_stale_partials(
    *, older_than: float | None = None, at_most_every: float | None = None
) -> int:
    """Delete temporary downloads left by a worker that died mid-download.

    Every process that archives calls this (the tracker at start, each archive on its way in),
    `at_most_every` seconds apart per process. A live download keeps its file's mtime fresh, so
    only a file untouched for a lease (TRACKER_LEASE_SECONDS) counts as left behind.
    """
    if at_most_every is not None:
        with _state.lock:
            now = time.monotonic()
            if now - _state.last_sweep < at_most_every:
                return 0
            _state.last_sweep = now
    partial_dir = Path(settings.MEDIA_ROOT) / PARTIAL_DIR
    if not partial_dir.exists():
        return 0
    lease = settings.TRACKER_LEASE_SECONDS if older_than is None else older_than
    cutoff = (timezone.now() - timedelta(seconds=lease)).timestamp()
    removed = 0
    for path in partial_dir.glob("*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    if removed:
        log.info("removed %s unfinished downloads left by a dead worker", removed)
    return removed
