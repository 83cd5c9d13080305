"""Bulk actions on the videos selected in the table, the gallery or a collection: one service
per action behind one dispatcher (`run`), so the view only turns the outcome into a response.

Every signed-in user sees every video (the table lists everybody's), so a selection is any
videos that still exist; what a user may *change* is each video's own rule
(Video.can_be_managed_by, applied by the delete and retry services), and a collection's is
collections_visible_to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from zipstream import ZipStream

from jobs.lib import storage
from jobs.lib.names import download_name
from jobs.models import Collection, Video
from jobs.selectors import MAX_COMPARE, parse_ids, retry_key
from jobs.services.collections import add_videos, collections_visible_to, remove_videos
from jobs.services.manage import delete_video
from jobs.services.submit import retry_video

log = logging.getLogger(__name__)

# Selections come from one page of the table (TABLE_PAGE_SIZE) or a collection's page; the
# bound keeps a crafted request from deleting or retrying thousands of jobs in one web request.
MAX_SELECTED = 100
# A zip is streamed, so memory is not the limit; the time one download holds a worker is.
ZIP_MAX_VIDEOS = 50
FILE_FIELDS = ("video_file", "thumbnail_file", "spritesheet_file")
NOT_YOURS = "only the person who submitted it, or staff, can delete it"


@dataclass(frozen=True)
class Done:
    """An action that finished: words for the user, and where to go next (None: back)."""

    message: str
    ok: bool = True  # False: nothing was done, or only part of it
    redirect: str | None = None


@dataclass(frozen=True)
class ZipDownload:
    filename: str
    size: int  # the exact length, known before the first byte (entries are stored, not deflated)
    chunks: Iterator[bytes]
    count: int  # videos in it


@dataclass(frozen=True)
class DeletePlan:
    """What "Delete" would do, for the confirmation page: nothing is deleted yet."""

    deletable: list[Video]
    refused: list[tuple[Video, str]] = field(default_factory=list)


Outcome = Done | ZipDownload | DeletePlan


def run(
    *,
    user: User,
    action: str,
    ids: Iterable[str],
    collection_id: str = "",
    confirmed: bool = False,
) -> Outcome:
    """Dispatch one bulk action on the selected ids; a ValidationError says why none was done."""
    service = ACTIONS.get(action)
    if service is None:
        raise ValidationError("Choose what to do with the selected videos.")
    videos = selected(ids)
    return service(user, videos, collection_id, confirmed)


def selected(values: Iterable[str]) -> list[Video]:
    """The selected videos that still exist, in the order they were selected."""
    ids = parse_ids(values, limit=MAX_SELECTED + 1)
    if not ids:
        raise ValidationError("Select at least one video first.")
    if len(ids) > MAX_SELECTED:
        raise ValidationError(f"Select at most {MAX_SELECTED} videos at a time.")
    found = Video.objects.select_related("provider", "source", "batch", "owner").in_bulk(ids)
    videos = [found[pk] for pk in ids if pk in found]
    if not videos:
        raise ValidationError("The selected videos no longer exist.")
    return videos


# --- one service per action ------------------------------------------------------------------


def add_to_collection(user: User, videos: list[Video], collection_id: str, _: bool) -> Done:
    collection = _collection(user, collection_id)
    added, there = add_videos(user=user, collection=collection, videos=videos)
    words = f"Added {_count(added)} to “{collection.name}”."
    if there:
        words += f" {_count(there, verb=True)} already in it."
    return Done(words)


def remove_from_collection(user: User, videos: list[Video], collection_id: str, _: bool) -> Done:
    collection = _collection(user, collection_id)
    removed = remove_videos(user=user, collection=collection, video_ids=[v.pk for v in videos])
    if not removed:
        return Done(f"None of the selected videos was in “{collection.name}”.", ok=False)
    return Done(f"Removed {_count(removed)} from “{collection.name}”.")


def compare(user: User, videos: list[Video], collection_id: str, _: bool) -> Done:
    if len(videos) < 2:
        raise ValidationError("Select at least two videos to compare.")
    if len(videos) > MAX_COMPARE:
        raise ValidationError(
            f"Compare plays up to {MAX_COMPARE} videos side by side; select fewer."
        )
    ids = ",".join(str(v.pk) for v in videos)
    return Done("", redirect=f"{reverse('jobs:compare')}?ids={ids}")


def zip_download(user: User, videos: list[Video], collection_id: str, _: bool) -> ZipDownload:
    """The selected videos' archived files as one zip, built while it is sent."""
    playable = [v for v in videos if v.playable]
    if not playable:
        raise ValidationError("None of the selected videos has archived files to download yet.")
    if len(playable) > ZIP_MAX_VIDEOS:
        raise ValidationError(
            f"A zip holds at most {ZIP_MAX_VIDEOS} videos; you selected {len(playable)} "
            "with files. Select fewer and download them in parts."
        )
    stream = zip_of(playable)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return ZipDownload(f"videos-{stamp}.zip", len(stream), iter(stream), len(playable))


def zip_of(videos: Sequence[Video]) -> ZipStream:
    """A sized zip stream of the videos' archived files, under their download names.

    Stored, not deflated: MP4, WebP and JPEG are compressed already, and a stored zip's length
    is known up front (Content-Length, so the browser shows real progress). Each file is read
    through the archive's storage (disk or bucket) in 64 KiB pieces, opened only when the
    response reaches it: memory stays flat however large.
    """
    stream = ZipStream(sized=True)
    for video in videos:
        for name in _archived_names(video):
            try:
                size = storage.size(name)
            except FileNotFoundError:  # lost from the archive: `verify_archives` will notice
                log.warning("video %s: %s is missing from the archive, left out", video.pk, name)
                continue
            arcname = download_name(video.pk, video.prompt, name)
            stream.add(storage.chunks(name), arcname, size=size)
    return stream


def _archived_names(video: Video) -> list[str]:
    return [str(getattr(video, f).name) for f in FILE_FIELDS if getattr(video, f)]


def delete(user: User, videos: list[Video], collection_id: str, confirmed: bool) -> Outcome:
    """Unconfirmed: the plan (which would go, which not and why). Confirmed: delete each with
    the one delete service, and say which were deleted and which were not, and why."""
    plan = DeletePlan(
        deletable=[v for v in videos if v.can_be_managed_by(user)],
        refused=[(v, NOT_YOURS) for v in videos if not v.can_be_managed_by(user)],
    )
    if not confirmed:
        return plan
    deleted: list[int] = []
    refused = [(v.pk, why) for v, why in plan.refused]
    for video in plan.deletable:
        pk = video.pk  # delete() clears it
        try:
            delete_video(video=video, user=user)
        except (ValidationError, PermissionDenied) as exc:
            refused.append((pk, _words(exc)))
        else:
            deleted.append(pk)
    return _report("Deleted", deleted, "Not deleted", refused)


def retry_failed(user: User, videos: list[Video], collection_id: str, _: bool) -> Done:
    """Retry each selected failed job with the one retry service, with the key its own Retry
    button uses: a video retried from its row a moment ago is found, not retried twice."""
    made: list[str] = []
    refused: list[tuple[int, str]] = []
    for video in videos:
        earlier = video.retries.first()
        if earlier is not None:
            refused.append((video.pk, f"already retried as #{earlier.pk}"))
            continue
        try:
            new = retry_video(user=user, video=video, key=retry_key(video, 0))
        except (ValidationError, PermissionDenied) as exc:
            refused.append((video.pk, _words(exc)))
        else:
            made.append(f"#{video.pk} as #{new.pk}")
    return _report("Retrying", made, "Not retried", refused, noun="failed job")


ACTIONS: dict[str, Callable[[User, list[Video], str, bool], Outcome]] = {
    "add": add_to_collection,
    "remove": remove_from_collection,
    "compare": compare,
    "zip": zip_download,
    "delete": delete,
    "retry": retry_failed,
}


# --- words -----------------------------------------------------------------------------------


def _collection(user: User, collection_id: str) -> Collection:
    picked = parse_ids([collection_id], limit=1)  # junk ("²", 30 digits) is no choice, not a 500
    if not picked:
        raise ValidationError("Pick a collection first.")
    found = collections_visible_to(user).filter(pk=picked[0]).first()
    if found is None:
        raise ValidationError("That collection does not exist or is not shared with you.")
    return found


def _count(n: int, *, noun: str = "video", verb: bool = False) -> str:
    words = f"{n} {noun}{'' if n == 1 else 's'}"
    return f"{words} {'was' if n == 1 else 'were'}" if verb else words


def _words(exc: ValidationError | PermissionDenied) -> str:
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return (text or "not allowed").rstrip(".")


def _report(
    did: str,
    done: Sequence[int | str],
    did_not: str,
    refused: Sequence[tuple[int, str]],
    *,
    noun: str = "video",
) -> Done:
    """ "Deleted 2 videos (#3, #4). Not deleted: #5 (why)." in one message."""
    parts = []
    if done:
        parts.append(
            f"{did} {_count(len(done), noun=noun)} ("
            + ", ".join(d if isinstance(d, str) else f"#{d}" for d in done)
            + ")."
        )
    if refused:
        parts.append(f"{did_not}: " + "; ".join(f"#{pk} ({why})" for pk, why in refused) + ".")
    return Done(" ".join(parts), ok=not refused)
