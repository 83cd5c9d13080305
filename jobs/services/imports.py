"""Adopting jobs made elsewhere (by scripts using the SDK): one by id, or a provider's whole list.

One path: both end in `adopt`, and both put the provider's refusals in words, as a
ValidationError. Running either twice imports nothing new.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from jobs import lifecycle, tasks
from jobs.models import Provider, StatusChange, Video
from jobs.provider.errors import (
    AuthenticationFailed,
    NotFound,
    NoVideosApi,
    ProviderError,
    ProviderRejected,
)
from jobs.provider.ids import decode_litellm, encode_litellm
from jobs.provider.schema import RemoteVideo
from jobs.selectors import estimate_cost

log = logging.getLogger(__name__)

IMPORT_SOURCE_DEPTH = 10  # how far up a remix chain an import by id follows missing sources


@dataclass(frozen=True)
class SyncResult:
    provider: Provider
    seen: int
    new: int


def import_one(*, provider: Provider, video_id: str) -> tuple[Video, bool]:
    """Import one job by its provider id, and its missing sources up the remix chain.

    Returns (video, created).
    """
    video_id = video_id.strip()
    if not video_id:
        raise ValidationError({"video_id": "Enter the provider's video id, e.g. video_68d7…"})
    provider.require()
    try:
        video, created = adopt(provider, provider.client().retrieve(video_id))
    except NotFound:
        raise ValidationError(
            {"video_id": f"“{provider}” has no video with the id {video_id}."}
        ) from None
    except ProviderError as exc:
        raise _in_words(provider, exc, "Could not import from") from exc
    # Sources first appear as remixed_from_video_id; fetch them so the family view is whole.
    # adopt links waiting remixes to a source as soon as it arrives.
    current = video
    for _ in range(IMPORT_SOURCE_DEPTH):
        if current.source_id or not current.remixed_from_video_id:
            break
        remote = _retrieve_source(provider, current)
        if remote is None:  # deleted or expired upstream: the remix still counts
            break
        current, _ = adopt(provider, remote)
    video.refresh_from_db()
    return video, created


def _retrieve_source(provider: Provider, remix: Video) -> RemoteVideo | None:
    """The remix's source from the provider. Through LiteLLM the source is named by its raw
    upstream id, which LiteLLM only knows wrapped like the remix's own id: that is asked first."""
    source_id = remix.remixed_from_video_id
    ids = [source_id]
    wrapped = decode_litellm(remix.video_id or "")
    if wrapped is not None and decode_litellm(source_id) is None:
        ids.insert(
            0,
            encode_litellm(wrapped.provider, wrapped.model_id, source_id, wrapped.deployment_id),
        )
    for candidate in ids:
        try:
            return provider.client().retrieve(candidate)
        except ProviderError as exc:
            log.info("source %s of %s not imported: %s", candidate, remix, exc)
    return None


def sync_provider(*, provider: Provider, limit: int = 100) -> SyncResult:
    """Adopt every job the provider lists that we do not know yet.

    The provider is paged oldest first, so sources arrive before their remixes.
    """
    provider.require()
    if not provider.can_list:
        raise ValidationError(
            f"“{provider}” cannot list its jobs (its “list / import” capability is off), so "
            "there is nothing to sync from; import jobs one at a time by id instead."
        )
    seen = new = 0
    try:
        for remote in provider.client().iter_all(limit=limit, order="asc"):
            seen += 1
            new += adopt(provider, remote)[1]
    except ProviderRejected as exc:
        if exc.status in (400, 422) and type(exc) is ProviderRejected:
            raise ValidationError(
                f"“{provider}” refused to list its jobs (HTTP {exc.status}: {exc.message}). "
                "Gateways such as LiteLLM need a routing hint to list videos; import jobs one "
                "at a time by id instead, and untick “list / import” for this provider."
            ) from exc
        if isinstance(exc, NoVideosApi | AuthenticationFailed):
            raise _in_words(provider, exc, "Could not sync from") from exc
        raise ValidationError(f"“{provider}” refused the listing: {exc}") from exc
    except ProviderError as exc:
        raise _in_words(provider, exc, "Could not sync from") from exc
    return SyncResult(provider, seen, new)


def _in_words(provider: Provider, exc: ProviderError, doing: str) -> ValidationError:
    if isinstance(exc, NoVideosApi):
        return ValidationError(f"“{provider}” does not answer like a Videos API: {exc}")
    if isinstance(exc, AuthenticationFailed):
        return ValidationError(f"“{provider}” refused the API key: {exc}")
    return ValidationError(f"{doing} “{provider}”: {exc}")


def adopt(provider: Provider, remote: RemoteVideo) -> tuple[Video, bool]:
    """Adopt one job the provider told us of, as an unowned "imported" row. Idempotent."""
    existing = Video.objects.filter(provider=provider, video_id=remote.id).first()
    if existing is not None:
        return existing, False
    source = find_source(provider, remote.remixed_from_video_id or "")
    try:
        with transaction.atomic():
            video = Video.objects.create(
                provider=provider,
                video_id=remote.id,
                submission=Video.Submission.IMPORTED,
                prompt=remote.prompt or "",
                model=remote.model or "",
                size=remote.size or "",
                seconds=remote.seconds or "",
                source=source,
                remixed_from_video_id=remote.remixed_from_video_id or "",
                # All a Video object tells of its origin is remixed_from_video_id.
                kind=Video.Kind.REMIX if remote.remixed_from_video_id else Video.Kind.CREATE,
                requested_at=remote.created_at or timezone.now(),
                cost_estimate=estimate_cost(
                    provider, remote.model or "", remote.size or "", remote.seconds or ""
                )
                or Decimal("0"),
            )
            lifecycle.open_charge(video)  # counted in usage, unowned; a failed one costs $0
            video = lifecycle.apply_snapshot(
                video_id=video.pk, remote=remote, via=StatusChange.Via.IMPORT
            )
            if video.is_archiving:  # its files can be fetched right away
                tasks.nudge_on_commit(video.pk)
    except IntegrityError:  # a concurrent import won
        return Video.objects.get(provider=provider, video_id=remote.id), False
    # Remixes already here that were waiting for this source: by its id, or (through LiteLLM)
    # by the upstream's raw id that its LiteLLM id wraps.
    names = [remote.id] + ([wrapped.raw] if (wrapped := decode_litellm(remote.id)) else [])
    Video.objects.filter(
        provider=provider, remixed_from_video_id__in=names, source__isnull=True
    ).update(source=video)
    video.refresh_from_db()
    return video, True


def find_source(provider: Provider, source_id: str) -> Video | None:
    """The local video a remix names as its source, by the provider's id; or, when LiteLLM
    answered the upstream's raw id, the one whose LiteLLM id wraps that raw id."""
    if not source_id:
        return None
    exact = Video.objects.filter(provider=provider, video_id=source_id).first()
    if exact is not None or decode_litellm(source_id) is not None:
        return exact
    # A LiteLLM id holds the base64 of ";video_id:<raw>" (last, or followed by ";deployment_id:…"),
    # aligned to one of three offsets (the prefix's length mod 3 is unknown): each aligned
    # whole group of three bytes encodes to the same characters wherever it sits. The decode
    # below confirms each candidate, as SQLite's LIKE also matches other cases. A scan, but
    # only on import of a remix whose source is not found by its id.
    tail = f";video_id:{source_id}".encode()
    endings = Q()
    for skip in range(3):
        aligned = tail[skip:][: (len(tail) - skip) // 3 * 3]
        endings |= Q(video_id__contains=base64.b64encode(aligned).decode())
    for candidate in Video.objects.filter(endings, provider=provider).order_by("pk")[:20]:
        wrapped = decode_litellm(candidate.video_id or "")
        if wrapped is not None and wrapped.raw == source_id:
            return candidate
    return None


def missing_source(video: Video) -> str:
    """What to tell the user when a remix's source is not in the dashboard ("" when it is)."""
    if video.source_id or not video.remixed_from_video_id:
        return ""
    return (
        f"Its source video {video.remixed_from_video_id} is not in the dashboard; "
        "import it to link them."
    )
