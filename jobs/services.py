"""Every state change of a video goes through here: submit, apply snapshots, archive, delete.

The database is the truth. Work is claimed by moving ``Video.next_poll_at`` into the future (a
lease) inside a short transaction; the HTTP call happens after the commit, never while a row lock
is held. If a worker dies, the lease runs out and another worker picks the row up again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image, UnidentifiedImageError
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from jobs import selectors
from jobs.models import (
    ARCHIVING,
    PROMPT_MAX_LENGTH,
    Batch,
    Budget,
    CatalogEntry,
    Provider,
    StatusChange,
    Video,
    WebhookDelivery,
)
from jobs.provider import (
    AssetsExpired,
    AuthenticationFailed,
    NotFound,
    NoVideosApi,
    ProviderClient,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    RemoteVideo,
)

log = logging.getLogger(__name__)

VARIANTS = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}
PARTIAL_DIR = ".partial"  # under MEDIA_ROOT, so a finished file is moved, not copied


# --- validation ------------------------------------------------------------------------------


def clean_prompt(prompt: str) -> str:
    """Normalise line endings and check the provider's 1..32,000 character rule."""
    prompt = prompt.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in prompt:
        raise ValidationError({"prompt": "The prompt contains a NUL character; remove it."})
    if not prompt.strip():
        raise ValidationError({"prompt": "Write a prompt: it cannot be empty."})
    if len(prompt) > PROMPT_MAX_LENGTH:
        raise ValidationError(
            {
                "prompt": f"The prompt is {len(prompt):,} characters; the limit is "
                f"{PROMPT_MAX_LENGTH:,}."
            }
        )
    return prompt


def estimate_cost(provider: Provider, model: str, size: str, seconds: str) -> Decimal | None:
    entry = CatalogEntry.objects.filter(provider=provider, model=model, size=size).first()
    if entry is None:
        return None
    try:
        return entry.price_per_second * int(seconds)
    except ValueError:  # extensions report stitched totals as free strings
        return None


# --- submitting ------------------------------------------------------------------------------


def submit_remix(
    *, user: AbstractBaseUser, source: Video, prompt: str, key: uuid.UUID, batch: Any = None
) -> Video:
    """Record a remix and queue its submission; the same ``key`` always yields the same job.

    The row is written before any HTTP call, so the prompt is never lost; the web request does
    not talk to the provider at all (the worker does), so it never waits on provider retries.
    """
    prompt = clean_prompt(prompt)
    provider = source.provider
    if not provider.enabled:
        raise ValidationError(f"The provider “{provider}” is disabled.")
    if not provider.can_remix:
        raise ValidationError(f"The provider “{provider}” does not offer remix.")
    if source.status != Video.Status.COMPLETED or not source.video_id:
        raise ValidationError("Only a completed video can be remixed.")
    return _record_submission(
        user=user,
        key=key,
        provider=provider,
        batch=batch,
        defaults={
            "source": source,
            "prompt": prompt,
            "model": source.model,
            "size": source.size,
            "seconds": source.seconds,
            "remixed_from_video_id": source.video_id,
            "cost_estimate": estimate_cost(provider, source.model, source.size, source.seconds)
            or Decimal("0"),
        },
    )


def submit_create(
    *,
    user: AbstractBaseUser,
    provider: Provider,
    prompt: str,
    model: str,
    size: str,
    seconds: str,
    key: uuid.UUID,
    input_reference: File | None = None,
) -> Video:
    prompt = clean_prompt(prompt)
    if not provider.enabled or not provider.can_create:
        raise ValidationError(f"The provider “{provider}” does not offer creating videos.")
    entry = CatalogEntry.objects.filter(provider=provider, model=model, size=size).first()
    if entry is None or seconds not in entry.seconds:
        raise ValidationError(f"{model} does not offer {seconds} s at {size}.")
    if input_reference is not None:  # Beyond remix: checked here, so no caller can skip it
        input_reference.name = "reference" + check_reference_image(input_reference, size)
    # One transaction: the worker is only told (on commit) once the reference is saved too.
    with transaction.atomic():
        video = _record_submission(
            user=user,
            key=key,
            provider=provider,
            defaults={
                "prompt": prompt,
                "model": model,
                "size": size,
                "seconds": seconds,
                "cost_estimate": entry.price_per_second * int(seconds),
            },
        )
        if input_reference is not None and not video.input_reference:
            video.input_reference.save(input_reference.name, input_reference)
    return video


def _record_submission(
    *,
    user: AbstractBaseUser,
    key: uuid.UUID,
    provider: Provider,
    defaults: dict[str, Any],
    batch: Any = None,
) -> Video:
    with transaction.atomic():
        _check_budget_for(user=user, key=key, defaults=defaults)  # Beyond remix: budgets
        video, created = Video.objects.get_or_create(
            idempotency_key=key,
            defaults={
                **defaults,
                "owner": user,
                "provider": provider,
                "batch": batch,
                "next_poll_at": timezone.now(),
            },
        )
        if video.owner_id != user.pk:
            raise PermissionDenied("That form belongs to somebody else.")
        if created:
            _history(
                video,
                "",
                Video.Status.QUEUED,
                via=StatusChange.Via.LOCAL,
                note="Recorded; waiting to submit",
            )
            transaction.on_commit(partial(_enqueue, video.pk))
    return video


def _enqueue(video_id: int) -> None:
    """Fast path: let the task worker act now. The tracker's sweep is the safety net."""
    from jobs import tasks

    try:
        tasks.advance_video.enqueue(video_id)
    except Exception:  # a broken queue must not lose the job: the tracker will find it
        log.exception("could not enqueue video %s; the tracker will pick it up", video_id)


# --- claiming work ---------------------------------------------------------------------------


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
    now = timezone.now()
    with transaction.atomic():
        due = Video.objects.filter(next_poll_at__lte=now).order_by("next_poll_at")
        if ids is not None:
            due = due.filter(pk__in=list(ids))
        if archives is not None:
            due = due.filter(ARCHIVING) if archives else due.exclude(ARCHIVING)
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


def poll_due_videos(*, limit: int = 50) -> int:
    """One tracker step in this thread: claim due videos and process them (tests drive this)."""
    claimed = claim_due(limit=limit)
    for video_id in claimed:
        process_claimed(video_id=video_id)
    return len(claimed)


def process_claimed(*, video_id: int) -> None:
    """Do the next step for a video this worker holds the lease on."""
    video = Video.objects.select_related("provider", "source").get(pk=video_id)
    try:
        if video.submission in (Video.Submission.PENDING, Video.Submission.UNKNOWN):
            send_submission(video)
        elif video.submission == Video.Submission.REJECTED:
            _settle(video.pk)
        elif video.status in Video.ACTIVE:
            refresh_video(video)
        elif video.is_archiving:
            archive_assets(video)
        else:
            _settle(video.pk)
    except Exception as exc:  # never leave a claimed row without a next step
        log.exception("processing video %s failed", video_id)
        _back_off(video.pk, f"Internal error: {exc.__class__.__name__}")


def _settle(video_id: int) -> None:
    Video.objects.filter(pk=video_id).update(next_poll_at=None)


def _back_off(video_id: int, message: str, retry_after: float | None = None) -> None:
    """Try again later: exponential in consecutive failures, or what the provider asked for."""
    video = Video.objects.get(pk=video_id)
    errors = min(video.poll_errors + 1, 30)
    delay = min(settings.POLL_MIN_SECONDS * 2**errors, settings.POLL_MAX_SECONDS * 4)
    if retry_after is not None:
        delay = max(delay if errors > 3 else 0, retry_after)
    Video.objects.filter(pk=video_id).update(
        poll_errors=errors,
        last_error=message[:1000],
        next_poll_at=timezone.now() + timedelta(seconds=delay),
    )


# --- talking to the provider -----------------------------------------------------------------


def send_submission(video: Video) -> None:
    """Send the create/remix call for a claimed video, exactly once per user action.

    The job's idempotency key goes out as the Idempotency-Key header, so a resend after a lost
    answer returns the first job where the provider honours keys; where it does not, an unknown
    outcome is first looked up in the provider's list before anything is sent again.
    """
    client = video.provider.client()
    Video.objects.filter(pk=video.pk).update(submit_attempts=video.submit_attempts + 1)
    try:
        remote = None
        if video.submission == Video.Submission.UNKNOWN:
            remote = _find_lost_submission(client, video)
        if remote is None:
            remote = _send(client, video)
    except ProviderUnavailable as exc:  # includes rate limiting: transient, try again later
        if exc.outcome_unknown:
            Video.objects.filter(pk=video.pk).update(submission=Video.Submission.UNKNOWN)
        _back_off(
            video.pk,
            f"Waiting to submit: {exc}",
            exc.retry_after if isinstance(exc, ProviderRateLimited) else None,
        )
        return
    except ProviderRejected as exc:  # the provider said no: show why, keep the prompt
        reject(
            video_id=video.pk,
            code=exc.code or f"http_{exc.status}",
            message=exc.message,
            param=exc.param,
        )
        return
    apply_remote_state(video_id=video.pk, remote=remote, via=StatusChange.Via.SUBMIT)


def _send(client: ProviderClient, video: Video) -> RemoteVideo:
    key = str(video.idempotency_key)
    if video.remixed_from_video_id:
        return client.remix(video.remixed_from_video_id, video.prompt, idempotency_key=key)
    reference = None
    if video.input_reference:
        video.input_reference.open("rb")
        reference = (
            Path(video.input_reference.name).name,
            video.input_reference.file,
            _image_type(video.input_reference.name),
        )
    try:
        return client.create(
            prompt=video.prompt,
            model=video.model,
            seconds=video.seconds,
            size=video.size,
            input_reference=reference,
            idempotency_key=key,
        )
    finally:
        if reference is not None:
            video.input_reference.close()


def _image_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".png": "image/png", ".webp": "image/webp"}.get(suffix, "image/jpeg")


def _find_lost_submission(client: ProviderClient, video: Video) -> RemoteVideo | None:
    """After a submit whose answer was lost, look for the job among the provider's newest ones."""
    if not video.provider.can_list:
        return None
    since = video.requested_at - timedelta(minutes=5)
    for remote in client.iter_all(limit=100):
        if remote.created_at is not None and remote.created_at < since:
            break  # newest first: everything further is older than our first attempt
        if (
            remote.prompt == video.prompt
            and (remote.remixed_from_video_id or "") == video.remixed_from_video_id
            and not Video.objects.filter(provider=video.provider, video_id=remote.id).exists()
        ):
            log.info("video %s: found the lost submission as %s", video.pk, remote.id)
            return remote
    return None


def reject(*, video_id: int, code: str, message: str, param: str | None = None) -> None:
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if param and param not in message:
            message = f"{message} (field: {param})"
        old = video.status
        video.submission = Video.Submission.REJECTED
        video.status = Video.Status.FAILED
        video.error_code, video.error_message = code[:100], message
        video.asset_state = Video.Assets.NONE
        video.next_poll_at = None
        video.last_error = ""
        video.notify_pending = video.owner_id is not None
        _email_when_final(video)  # Beyond remix: optional e-mail
        video.save()
        _history(video, old, video.status, via=StatusChange.Via.SUBMIT, note=f"Rejected: {code}")


def refresh_video(video: Video, client: ProviderClient | None = None) -> None:
    client = client or video.provider.client()
    try:
        remote = client.retrieve(video.video_id or "")
    except NotFound:
        forget(video_id=video.pk)
    except ProviderRateLimited as exc:
        _back_off(video.pk, f"Provider is rate-limiting: {exc}", exc.retry_after)
    except ProviderError as exc:  # down, or a key problem an admin can fix: keep trying
        _back_off(video.pk, f"Could not reach the provider: {exc}")
    else:
        apply_remote_state(video_id=video.pk, remote=remote, via=StatusChange.Via.POLL)


def forget(*, video_id: int) -> None:
    """The provider answered 404 for a job it had accepted: say so plainly and stop asking."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        old = video.status
        video.status = Video.Status.FAILED
        video.error_code = "not_found_at_provider"
        video.error_message = "The provider no longer knows this job (it answered 404)."
        video.asset_state = (
            Video.Assets.NONE if old != Video.Status.COMPLETED else video.asset_state
        )
        video.next_poll_at = None
        video.notify_pending = video.owner_id is not None
        _email_when_final(video)  # Beyond remix: optional e-mail
        video.save()
        _history(video, old, video.status, via=StatusChange.Via.POLL, note="404 at the provider")


@transaction.atomic
def apply_remote_state(*, video_id: int, remote: RemoteVideo, via: str) -> Video:
    """Bring the local row in line with a provider snapshot, recording any transition."""
    # The provider comes along (next_poll_delay reads it); only the video row is locked.
    video = (
        Video.objects.select_for_update(of=("self",)).select_related("provider").get(pk=video_id)
    )
    now = timezone.now()
    known = video.submission in (Video.Submission.SUBMITTED, Video.Submission.IMPORTED)
    if video.submission in (Video.Submission.PENDING, Video.Submission.UNKNOWN):
        video.submission = Video.Submission.SUBMITTED
        video.video_id = remote.id
    if known and video.status in Video.TERMINAL and via != StatusChange.Via.IMPORT:
        # A finished job stays finished, even if a late or out-of-order answer disagrees.
        video.next_poll_at = _next_step_after_terminal(video, now)
        video.save(update_fields=["next_poll_at", "submission", "video_id", "updated_at"])
        return video

    old_status, old_progress, previous_read = video.status, video.progress, video.last_polled_at
    status, error_code, error_message = _interpret_status(remote)
    video.status = status
    video.model = remote.model or video.model
    video.size = remote.size or video.size
    video.seconds = remote.seconds or video.seconds
    if remote.prompt is not None:
        video.prompt = remote.prompt
    video.created_at = remote.created_at or video.created_at
    video.completed_at = remote.completed_at
    video.expires_at = remote.expires_at
    # Record lineage from the source we submitted: gateways may echo an upstream id instead.
    video.remixed_from_video_id = video.remixed_from_video_id or remote.remixed_from_video_id or ""
    video.error_code, video.error_message = error_code, error_message
    if status == Video.Status.COMPLETED:
        video.progress = 100
    elif status == old_status:
        video.progress = max(old_progress, remote.progress)  # progress never goes backwards
    else:
        video.progress = remote.progress
    video.poll_errors, video.last_error = 0, ""
    video.last_polled_at = now

    if status in Video.ACTIVE:
        delay = next_poll_delay(
            video, remote, old_status=old_status, old_progress=old_progress, previous=previous_read
        )
        video.next_poll_at = now + timedelta(seconds=delay)
    else:
        video.notify_pending = video.owner_id is not None
        _email_when_final(video)  # Beyond remix: optional e-mail
        if status == Video.Status.FAILED:
            video.asset_state = Video.Assets.NONE
        video.next_poll_at = _next_step_after_terminal(video, now)
    video.save()
    if status != old_status or via in (StatusChange.Via.SUBMIT, StatusChange.Via.IMPORT):
        _history(
            video,
            old_status if via != StatusChange.Via.IMPORT else "",
            status,
            via=via,
            progress=video.progress,
        )
    if video.next_poll_at is not None and status == Video.Status.COMPLETED:
        transaction.on_commit(partial(_enqueue, video.pk))
    return video


def _next_step_after_terminal(video: Video, now: datetime) -> datetime | None:
    if video.status == Video.Status.COMPLETED and video.asset_state == Video.Assets.PENDING:
        return now  # archive straight away: assets expire (about an hour at OpenAI)
    return None


def _interpret_status(remote: RemoteVideo) -> tuple[str, str, str]:
    if remote.status in Video.Status.values:
        return remote.status, remote.error_code or "", remote.error_message or ""
    # The reference allows for states it does not list (e.g. batch "expired"): treat them as a
    # generic terminal failure, in words, rather than polling forever.
    return (
        Video.Status.FAILED,
        "unknown_status",
        f"The provider reported a status this dashboard does not know: “{remote.status}”.",
    )


def next_poll_delay(
    video: Video,
    remote: RemoteVideo,
    *,
    old_status: str,
    old_progress: int,
    previous: datetime | None,
) -> float:
    """Adaptive: rare while far from done, sooner as completion nears.

    With webhooks the provider tells us when a job finishes, so polling is only a slow fallback.
    The provider's own `openai-poll-after-ms` is a floor: asking sooner only spends its quota.
    """
    low, high = settings.POLL_MIN_SECONDS, settings.POLL_MAX_SECONDS
    if video.provider.webhooks_enabled:
        return settings.POLL_WEBHOOK_SECONDS
    floor = max(low, remote.poll_after or 0.0)
    eta = _eta_seconds(remote, old_status, old_progress, previous)
    if eta is None:
        delay = low * 2
    else:
        # Aim just past the predicted finish, but re-check at 3/4 of a long wait in case the
        # estimate is off; near the end this converges to the minimum interval.
        delay = eta * 0.75 if eta > 4 * low else eta + 0.2
    return min(max(delay, floor), high)


def _eta_seconds(
    remote: RemoteVideo, old_status: str, old_progress: int, previous: datetime | None
) -> float | None:
    """Seconds left, from the progress made since the previous read.

    Not from creation: that would count the time spent queued as rendering and predict a
    finish far too late (measured in bench/p2_provider_load.py: 1.5× the reads of a naive loop).
    """
    moving = Video.Status.IN_PROGRESS
    if remote.status != moving or old_status != moving or previous is None:
        return None
    elapsed = (timezone.now() - previous).total_seconds()
    gained = remote.progress - old_progress
    if elapsed <= 0 or gained <= 0:
        return None
    return (100 - remote.progress) * elapsed / gained


# --- archiving -------------------------------------------------------------------------------


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
        _delete_files(saved.values())
        mark_assets_expired(video_id=video.pk)
        return
    except NotFound:
        _delete_files(saved.values())
        forget(video_id=video.pk)
        return
    except ProviderError as exc:
        _delete_files(saved.values())
        if video.expires_at and video.expires_at < timezone.now():
            mark_assets_expired(video_id=video.pk)
        else:
            _back_off(
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


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        default_storage.delete(name)


def mark_assets_expired(*, video_id: int) -> None:
    Video.objects.filter(pk=video_id).update(
        asset_state=Video.Assets.EXPIRED,
        next_poll_at=None,
        last_error="The provider's download links expired before the files could be archived.",
    )


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


def rearchive(*, video_id: int) -> None:
    """Admin action: fetch the assets again (e.g. after files were lost)."""
    Video.objects.filter(pk=video_id, status=Video.Status.COMPLETED).update(
        asset_state=Video.Assets.PENDING, next_poll_at=timezone.now(), poll_errors=0
    )
    _enqueue(video_id)


def refresh_now(*, video_id: int) -> None:
    """Admin/webhook: look at this video at the next opportunity."""
    Video.objects.filter(pk=video_id).filter(Q(status__in=Video.ACTIVE) | ARCHIVING).exclude(
        submission=Video.Submission.REJECTED
    ).update(next_poll_at=timezone.now())
    _enqueue(video_id)


# --- deleting --------------------------------------------------------------------------------


def delete_video(*, video: Video, user: AbstractBaseUser) -> None:
    """Delete at the provider too, then locally. Only the owner or staff may."""
    if not (user.is_staff or video.owner_id == user.pk):
        raise PermissionDenied("Only the person who submitted it, or staff, can delete it.")
    if video.is_active and video.submission == Video.Submission.SUBMITTED:
        raise ValidationError("This job is still running; the provider only deletes finished jobs.")
    if video.submission in (Video.Submission.PENDING, Video.Submission.UNKNOWN):
        # Take it away from the workers first so it cannot be sent while we delete it.
        if not Video.objects.filter(pk=video.pk, submission=video.submission).update(
            next_poll_at=None, submission=Video.Submission.REJECTED
        ):
            raise ValidationError("The job changed while deleting; try again.")
        video.refresh_from_db()
        if video.submission != Video.Submission.REJECTED:
            raise ValidationError("The job was just submitted; wait until it finishes.")
    if video.video_id and video.submission in (
        Video.Submission.SUBMITTED,
        Video.Submission.IMPORTED,
    ):
        try:
            video.provider.client().delete(video.video_id)
        except NotFound:
            pass  # already gone there (expired or deleted elsewhere)
        except ProviderError as exc:
            raise ValidationError(f"The provider could not delete it: {exc}") from exc
    files = [
        f.name
        for f in (
            video.video_file,
            video.thumbnail_file,
            video.spritesheet_file,
            video.input_reference,
        )
        if f
    ]
    video.delete()
    _delete_files(files)


# --- webhooks --------------------------------------------------------------------------------


class WebhookRejected(Exception):
    """A delivery we refuse: bad signature, stale timestamp, or webhooks not configured."""


@dataclass(frozen=True)
class WebhookOutcome:
    duplicate: bool
    video_pk: int | None


def handle_webhook(*, provider: Provider, headers: dict[str, str], body: bytes) -> WebhookOutcome:
    """Verify a Standard Webhooks delivery and re-read the job it names.

    Only the id in the payload is used: the job's state always comes from the provider itself.
    """
    secret = provider.webhook_secret
    if not provider.webhooks_enabled or not secret:
        raise WebhookRejected("Webhooks are not configured for this provider.")
    try:
        # OpenAI's rule: a whsec_ secret is base64 after the prefix, any other is raw UTF-8.
        key = secret if secret.startswith("whsec_") else secret.encode()
        payload = Webhook(key).verify(body, headers)  # constant-time, 5-minute tolerance
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError) as exc:
        raise WebhookRejected(f"Signature check failed: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected("The payload is not a JSON object.")
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    remote_id = str(data.get("id") or "")[:512]
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                provider=provider,
                webhook_id=headers.get("webhook-id", "")[:255],
                event_type=str(payload.get("type", ""))[:100],
                video_id=remote_id,
            )
    except IntegrityError:
        return WebhookOutcome(duplicate=True, video_pk=None)
    video = Video.objects.filter(provider=provider, video_id=remote_id).first()
    if video is None:
        return WebhookOutcome(duplicate=False, video_pk=None)
    refresh_now(video_id=video.pk)
    return WebhookOutcome(duplicate=False, video_pk=video.pk)


# --- import ----------------------------------------------------------------------------------


def import_remote(*, provider: Provider, remote: RemoteVideo) -> tuple[Video, bool]:
    """Adopt a job created elsewhere (e.g. by a script using the SDK). Idempotent."""
    existing = Video.objects.filter(provider=provider, video_id=remote.id).first()
    if existing is not None:
        return existing, False
    source = None
    if remote.remixed_from_video_id:
        source = Video.objects.filter(
            provider=provider, video_id=remote.remixed_from_video_id
        ).first()
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
                requested_at=remote.created_at or timezone.now(),
                cost_estimate=estimate_cost(
                    provider, remote.model or "", remote.size or "", remote.seconds or ""
                )
                or Decimal("0"),
            )
            apply_remote_state(video_id=video.pk, remote=remote, via=StatusChange.Via.IMPORT)
    except IntegrityError:  # a concurrent import won
        return Video.objects.get(provider=provider, video_id=remote.id), False
    Video.objects.filter(
        provider=provider, remixed_from_video_id=remote.id, source__isnull=True
    ).update(source=video)
    video.refresh_from_db()
    return video, True


def import_by_id(*, provider: Provider, video_id: str) -> tuple[Video, bool]:
    remote = provider.client().retrieve(video_id)
    return import_remote(provider=provider, remote=remote)


def sync_from_provider(*, provider: Provider, limit: int = 100) -> tuple[int, int]:
    """Page through the provider's list and adopt what we do not know. Returns (seen, new)."""
    seen = new = 0
    for remote in provider.client().iter_all(limit=limit, order="asc"):  # sources before remixes
        seen += 1
        _, created = import_remote(provider=provider, remote=remote)
        new += created
    return seen, new


# --- notifications ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notices:
    running: int  # my jobs still moving, for the tab title
    items: list[dict[str, str]]  # finished since I was last told, each told once


def take_notifications(*, user: AbstractBaseUser) -> Notices:
    """One query for my live rows; a second write only when something finished."""
    if not user.is_authenticated:
        return Notices(0, [])
    fields = ("pk", "status", "submission", "prompt", "error_message", "notify_pending")
    mine = Video.objects.filter(owner=user).order_by().only(*fields)
    # A UNION of two equality lookups, each served by its own (owner, …) index, reads only the
    # live rows; `owner AND (notify OR active)` could only use the owner index and read every
    # row the user ever made (bench/p1_table_poll.py). No ORDER BY on the UNION: SQLite would
    # then merge through the owner index again; the few live rows are sorted here instead.
    live = mine.filter(status__in=Video.ACTIVE).exclude(submission=Video.Submission.REJECTED)
    rows = sorted(mine.filter(notify_pending=True).union(live).order_by(), key=lambda row: -row.pk)
    finished = [r for r in rows if r.notify_pending][:10]
    if finished:  # a write only when there is news; a second tab may show it too, harmlessly
        Video.objects.filter(pk__in=[r.pk for r in finished]).update(notify_pending=False)
    items = []
    for video in finished:
        ok = video.status == Video.Status.COMPLETED
        short = video.prompt[:60] + ("…" if len(video.prompt) > 60 else "")
        reason = "" if ok else f": {video.error_message[:120]}"
        items.append(
            {
                "id": str(video.pk),
                "level": "success" if ok else "error",
                "text": f"“{short}” {'completed' if ok else 'failed'}{reason}",
                "url": video.get_absolute_url(),
            }
        )
    return Notices(sum(1 for r in rows if r.is_active), items)


# --- history ---------------------------------------------------------------------------------


def _history(
    video: Video, old: str, new: str, *, via: str, progress: int | None = None, note: str = ""
) -> None:
    StatusChange.objects.create(
        video=video,
        from_status=old,
        to_status=new,
        via=via,
        progress=video.progress if progress is None else progress,
        note=note[:300],
    )


# --- provider checks -------------------------------------------------------------------------


def check_provider(*, provider: Provider) -> tuple[int, str]:
    """Plain words on whether the base URL speaks the Videos API and the key is accepted."""
    from django.contrib import messages

    from jobs.provider import AuthenticationFailed, NoVideosApi

    if not provider.api_key:
        return messages.ERROR, (
            f"the environment variable {provider.api_key_env} is not set, so "
            "there is no API key to send."
        )
    try:
        provider.client().check()
    except NoVideosApi:
        return messages.ERROR, (
            "this provider does not offer the Videos API (GET /videos "
            "answered 404). OpenAI's own hosted API shut down on 2026-09-24; "
            "use a gateway or re-host that speaks it."
        )
    except AuthenticationFailed as exc:
        return messages.ERROR, f"the Videos API answered, but the key was refused: {exc}"
    except ProviderError as exc:
        return messages.WARNING, f"could not check: {exc}"
    models = ", ".join(provider.model_ids()) or "none configured"
    return messages.SUCCESS, f"the Videos API answers and the key is accepted. Models: {models}."


# === Beyond remix ==============================================================================
# Create with a reference image, batch remix and retry, monthly budgets, import and sync with
# plain-worded refusals, and the optional e-mail when a job finishes. Existing code calls in at
# three points: submit_create (check_reference_image), _record_submission (_check_budget_for)
# and the writers of a final state (_email_when_final).

REFERENCE_MAX_BYTES = 10 * 1024 * 1024
# Pillow's name for the format -> the suffix we store it under (_image_type() reads the suffix)
REFERENCE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
BATCH_MAX_JOBS = 20
BATCH_MAX_VARIATIONS = 10


# --- create: the reference image -------------------------------------------------------------


def check_reference_image(upload: File, size: str) -> str:
    """Verify an `input_reference` before anything is recorded; returns its proper suffix.

    The provider uses the image as the first frame, so it must be a JPEG, PNG or WebP of exactly
    the requested size; finding that out here gives a message next to the field instead of a
    rejected job a minute later.
    """
    if upload.size is not None and upload.size > REFERENCE_MAX_BYTES:
        raise ValidationError(
            {
                "input_reference": f"The image is {upload.size / 1_048_576:.1f} MB, larger "
                f"than the {REFERENCE_MAX_BYTES // 1_048_576} MB limit."
            }
        )
    try:
        width, height = (int(n) for n in size.split("x"))
    except ValueError:
        raise ValidationError({"size": f"“{size}” is not a size like 1280x720."}) from None
    upload.seek(0)
    try:
        with Image.open(upload) as image:  # reads the header only: cheap even for large files
            fmt, actual = image.format, image.size
            image.verify()  # walks the file's structure without decoding the pixels
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise ValidationError(
            {"input_reference": "This file is not a readable JPEG, PNG or WebP image."}
        ) from None
    finally:
        upload.seek(0)
    if fmt not in REFERENCE_FORMATS:
        raise ValidationError(
            {"input_reference": f"The image is a {fmt} file; use a JPEG, PNG or WebP image."}
        )
    if actual != (width, height):
        raise ValidationError(
            {
                "input_reference": f"The image is {actual[0]}×{actual[1]} pixels, but a {size} "
                f"video needs exactly {width}×{height}: the image becomes the first frame. "
                "Resize or crop it, or choose the matching size."
            }
        )
    return REFERENCE_FORMATS[fmt]


# --- budgets ---------------------------------------------------------------------------------


class BudgetExceeded(ValidationError):
    """A submit that would take a user or team over its monthly budget."""


def _check_budget_for(*, user: AbstractBaseUser, key: uuid.UUID, defaults: dict[str, Any]) -> None:
    """Called inside _record_submission's transaction, before the insert."""
    if Video.objects.filter(idempotency_key=key).exists():
        return  # a resubmitted form finds its job: nothing new is spent
    what = "remix" if defaults.get("remixed_from_video_id") else "video"
    check_budget(user=user, cost=defaults.get("cost_estimate") or Decimal("0"), what=what)


def check_budget(*, user: AbstractBaseUser, cost: Decimal, what: str) -> None:
    """Refuse a submit that would exceed a monthly budget of the user or one of their teams.

    Must run inside the transaction that inserts the job(s). The budget rows are locked first
    (SELECT … FOR UPDATE, in pk order so two submitters never deadlock) and only then is the
    month summed: a second submitter waits for the first to commit and then sees its job in
    the sum. On SQLite the IMMEDIATE transaction mode already serialises writers.
    """
    if not getattr(user, "is_authenticated", False) or cost <= 0:
        return
    assert transaction.get_connection().in_atomic_block, "check_budget needs a transaction"
    budgets = list(
        Budget.objects.select_for_update()
        .filter(Q(user=user) | Q(group__in=user.groups.all()))  # type: ignore[attr-defined]
        .order_by("pk")
    )
    since = selectors.month_start()
    for budget in budgets:
        if budget.group_id:
            spent = selectors.spent(since=since, group_id=budget.group_id)
        else:
            spent = selectors.spent(since=since, user=user)
        if spent + cost <= budget.monthly_limit:
            continue
        left = max(budget.monthly_limit - spent, Decimal("0"))
        if budget.group_id:
            team = budget.group.name  # type: ignore[union-attr]
            whose = f"your team “{team}” has ${left:.2f} left of its"
        else:
            whose = f"you have ${left:.2f} left of your"
        raise BudgetExceeded(
            f"This {what} costs ${cost:.2f}; {whose} ${budget.monthly_limit:.2f} monthly budget.",
            code="budget",
        )


# --- batch remix and retry -------------------------------------------------------------------


def batch_prompts(text: str, variations: int = 1) -> list[str]:
    """One prompt per non-blank line; with N > 1 variations each line becomes N jobs.

    The Videos API has no seed or `n`, so N identical prompts would be N indistinguishable
    requests: each variation gets " (variation k of N)" appended, which nudges the model to
    differ and keeps the jobs apart in the table.
    """
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if variations <= 1:
        return lines
    return [
        f"{line} (variation {k} of {variations})"
        for line in lines
        for k in range(1, variations + 1)
    ]


def batch_job_key(key: uuid.UUID, index: int) -> uuid.UUID:
    """Deterministic per-job key: the same form posted twice finds the same jobs."""
    return uuid.uuid5(key, str(index))


def submit_batch(
    *, user: AbstractBaseUser, source: Video, prompts: list[str], key: uuid.UUID
) -> Batch:
    """Several remixes of one source, each its own job, grouped as a Batch. All or nothing."""
    if not prompts:
        raise ValidationError({"prompts": "Write at least one prompt, one per line."})
    if len(prompts) > BATCH_MAX_JOBS:
        raise ValidationError(
            {"prompts": f"That is {len(prompts)} jobs; a batch holds at most {BATCH_MAX_JOBS}."}
        )
    cleaned = []
    for number, prompt in enumerate(prompts, 1):
        try:
            cleaned.append(clean_prompt(prompt))
        except ValidationError as exc:
            raise ValidationError(
                {"prompts": f"Prompt {number}: {' '.join(exc.messages)}"}
            ) from exc
    keys = [batch_job_key(key, i) for i in range(len(cleaned))]
    with transaction.atomic():
        batch, _ = Batch.objects.get_or_create(
            idempotency_key=key, defaults={"owner": user, "source": source}
        )
        if batch.owner_id != user.pk:
            raise PermissionDenied("That form belongs to somebody else.")
        new = len(keys) - Video.objects.filter(idempotency_key__in=keys).count()
        unit = estimate_cost(source.provider, source.model, source.size, source.seconds)
        # The whole batch against the budget first: otherwise it could stop half-way.
        check_budget(user=user, cost=(unit or Decimal("0")) * new, what=f"batch of {new} remixes")
        for job_key, prompt in zip(keys, cleaned, strict=True):
            submit_remix(user=user, source=source, prompt=prompt, key=job_key, batch=batch)
    return batch


def retry_video(*, user: AbstractBaseUser, video: Video, key: uuid.UUID) -> Video:
    """A failed job again, as a new job with the same inputs (prompt, settings, source, image).

    `key` is minted when the Retry button is rendered, so a double click makes one retry.
    """
    existing = Video.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.owner_id != user.pk:
            raise PermissionDenied("That form belongs to somebody else.")
        if existing.retry_of_id != video.pk:
            raise ValidationError("This form was already used for another job; reload the page.")
        return existing
    if not (user.is_staff or video.owner_id == user.pk):  # type: ignore[attr-defined]
        raise PermissionDenied("Only the person who submitted it, or staff, can retry it.")
    if video.is_active or video.status != Video.Status.FAILED:
        raise ValidationError("Only a failed job can be retried.")
    provider = video.provider
    remixed_from = video.remixed_from_video_id or (video.source.video_id if video.source else "")
    if not provider.enabled:
        raise ValidationError(f"The provider “{provider}” is disabled.")
    if video.is_remix and not provider.can_remix:
        raise ValidationError(f"The provider “{provider}” does not offer remix.")
    if not video.is_remix and not provider.can_create:
        raise ValidationError(f"The provider “{provider}” does not offer creating videos.")
    if video.is_remix and not remixed_from:
        raise ValidationError("The source of this remix is unknown, so it cannot be retried.")
    cost = estimate_cost(provider, video.model, video.size, video.seconds)
    with transaction.atomic():  # the worker hears of it only once the image is copied too
        new = _record_submission(
            user=user,
            key=key,
            provider=provider,
            batch=video.batch,
            defaults={
                "prompt": video.prompt,
                "model": video.model,
                "size": video.size,
                "seconds": video.seconds,
                "source": video.source,
                "remixed_from_video_id": remixed_from or "",
                "cost_estimate": video.cost_estimate if cost is None else cost,
                "retry_of": video,
            },
        )
        if video.input_reference and not new.input_reference:
            try:
                with video.input_reference.open("rb") as image:
                    new.input_reference.save(Path(video.input_reference.name).name, image)
            except FileNotFoundError:
                raise ValidationError(
                    "The reference image of the failed job is gone, so it cannot be retried "
                    "as it was; create a new video instead."
                ) from None
    return new


# --- import and sync -------------------------------------------------------------------------

IMPORT_SOURCE_DEPTH = 10  # how far up a remix chain an import by id follows missing sources


def import_one(*, provider: Provider, video_id: str) -> tuple[Video, bool]:
    """Import one job by its provider id, and its missing sources up the remix chain.

    Returns (video, created). Refusals come back as a ValidationError in words.
    """
    video_id = video_id.strip()
    if not video_id:
        raise ValidationError({"video_id": "Enter the provider's video id, e.g. video_68d7…"})
    if not provider.enabled:
        raise ValidationError(f"The provider “{provider}” is disabled.")
    try:
        video, created = import_by_id(provider=provider, video_id=video_id)
    except NoVideosApi as exc:
        raise ValidationError(f"“{provider}” does not answer like a Videos API: {exc}") from exc
    except NotFound:
        raise ValidationError(
            {"video_id": f"“{provider}” has no video with the id {video_id}."}
        ) from None
    except AuthenticationFailed as exc:
        raise ValidationError(f"“{provider}” refused the API key: {exc}") from exc
    except ProviderError as exc:
        raise ValidationError(f"Could not import from “{provider}”: {exc}") from exc
    # Sources first appear as remixed_from_video_id; fetch them so the family view is whole.
    # import_remote links waiting remixes to a source as soon as it arrives.
    current = video
    for _ in range(IMPORT_SOURCE_DEPTH):
        if current.source_id or not current.remixed_from_video_id:
            break
        try:
            current, _ = import_by_id(provider=provider, video_id=current.remixed_from_video_id)
        except ProviderError as exc:  # deleted or expired upstream: the remix still counts
            log.info("source %s of %s not imported: %s", current.remixed_from_video_id, video, exc)
            break
    video.refresh_from_db()
    return video, created


@dataclass(frozen=True)
class SyncResult:
    provider: Provider
    seen: int
    new: int


def sync_provider(*, provider: Provider, limit: int = 100) -> SyncResult:
    """Adopt every job the provider lists that we do not know yet. Running it again is a no-op.

    The provider is paged oldest first (sources before their remixes), and import_remote links
    each remix to its source. Refusals come back as a ValidationError in words.
    """
    if not provider.enabled:
        raise ValidationError(f"The provider “{provider}” is disabled.")
    if not provider.can_list:
        raise ValidationError(
            f"“{provider}” cannot list its jobs (its “list / import” capability is off), so "
            "there is nothing to sync from; import jobs one at a time by id instead."
        )
    try:
        seen, new = sync_from_provider(provider=provider, limit=limit)
    except NoVideosApi as exc:
        raise ValidationError(f"“{provider}” does not answer like a Videos API: {exc}") from exc
    except AuthenticationFailed as exc:
        raise ValidationError(f"“{provider}” refused the API key: {exc}") from exc
    except ProviderRejected as exc:
        if exc.status in (400, 422):
            raise ValidationError(
                f"“{provider}” refused to list its jobs (HTTP {exc.status}: {exc.message}). "
                "Gateways such as LiteLLM need a routing hint to list videos; import jobs one "
                "at a time by id instead, and untick “list / import” for this provider."
            ) from exc
        raise ValidationError(f"“{provider}” refused the listing: {exc}") from exc
    except ProviderError as exc:
        raise ValidationError(f"Could not sync from “{provider}”: {exc}") from exc
    return SyncResult(provider, seen, new)


# --- e-mail when a job finishes --------------------------------------------------------------


def _email_when_final(video: Video) -> None:
    """Queue the owner's e-mail for after the commit: only a state that was saved is reported."""
    if settings.NOTIFY_BY_EMAIL and video.owner_id is not None:
        transaction.on_commit(partial(send_final_email, video.pk))


def send_final_email(video_id: int) -> bool:
    """Tell the owner (if they have an address) that a job completed or failed."""
    video = Video.objects.select_related("owner").filter(pk=video_id).first()
    if video is None or video.owner is None or not video.owner.email:
        return False
    ok = video.status == Video.Status.COMPLETED and video.submission != Video.Submission.REJECTED
    short = " ".join(video.prompt.split())  # a header must not contain line breaks
    short = short[:60] + ("…" if len(short) > 60 else "")
    outcome = "is ready" if ok else "failed"
    lines = [
        f"Your video “{short}” {outcome}.",
        "" if ok else f"Reason: {video.error_message or video.error_code or 'none given'}",
        f"{settings.SITE_URL}{video.get_absolute_url()}",
    ]
    try:
        send_mail(
            f"Video #{video.pk} {outcome}: {short}",
            "\n".join(line for line in lines if line) + "\n",
            None,  # DEFAULT_FROM_EMAIL
            [video.owner.email],
        )
    except Exception:  # a broken mail server must not break the tracker that got here
        log.exception("could not e-mail the owner of video %s", video.pk)
        return False
    return True
