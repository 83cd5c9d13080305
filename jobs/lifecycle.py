"""Every write of a video's provider-owned state, and the history row that records it.

Callers hold the lease on the row (the tracker) or act for a user (services). Nothing here
talks to the provider or enqueues work: the tracker acts on what these writes leave behind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import notify, outbound
from jobs.models import Charge, Provider, StatusChange, Video
from jobs.polling import back_off_delay
from jobs.polling import next_poll_delay as next_poll_delay  # re-exported for its callers
from jobs.provider.schema import RemoteVideo
from jobs.snapshot_rows import SNAPSHOT_FIELDS, locked_for_snapshot, save_changed


def history(
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


@transaction.atomic
def apply_snapshot(
    *, video_id: int, remote: RemoteVideo, via: str, provider: Provider | None = None
) -> Video:
    """Bring the local row in line with a provider snapshot, recording any transition.
    `provider`: the video's provider, when the caller has it already (the tracker)."""
    video = locked_for_snapshot(video_id, via, provider)
    before = {name: getattr(video, name) for name in SNAPSHOT_FIELDS[2:]}  # not the FKs
    now = timezone.now()
    known = video.submission in (Video.Submission.SUBMITTED, Video.Submission.IMPORTED)
    if video.submission in Video.WAITING:
        video.submission = Video.Submission.SUBMITTED
        video.video_id = remote.id
    if known and video.status in Video.TERMINAL and via != StatusChange.Via.IMPORT:
        # A finished job stays finished, even if a late or out-of-order answer disagrees.
        video.next_poll_at = _next_step_after_terminal(video, now)
        save_changed(video, before)
        return video

    old_status, old_progress, previous_read = video.status, video.progress, video.last_polled_at
    if remote.status not in Video.Status.values:
        return _state_unknown(video, remote, now, via, before)
    status = remote.status
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
    video.error_code = remote.error_code or ""
    video.error_message = remote.error_message or FINAL_WORDS.get(status, "")
    video.content_url = _content_url(remote.content_url) or video.content_url
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
        _finish(video)
        if status != Video.Status.COMPLETED:  # failed, cancelled, expired: nothing to fetch
            video.asset_state = Video.Assets.NONE
        video.next_poll_at = _next_step_after_terminal(video, now)
    save_changed(video, before)
    if status in (Video.Status.FAILED, Video.Status.EXPIRED):  # nothing was made
        waive_charge(video.pk)
    elif status == Video.Status.CANCELLED and not _had_started(old_status, old_progress):
        waive_charge(video.pk)
    elif (figure := provider_cost(remote.raw)) is not None:
        Charge.objects.filter(video_id=video.pk).update(amount=figure, basis=Charge.Basis.PROVIDER)
    if status != old_status or via in (StatusChange.Via.SUBMIT, StatusChange.Via.IMPORT):
        history(
            video,
            old_status if via != StatusChange.Via.IMPORT else "",
            status,
            via=via,
            progress=video.progress,
        )
    return video


def _finish(video: Video) -> None:
    """A job reached a final state: its owner hears of it (toast, and e-mail where enabled)."""
    video.notify_pending = video.owner_id is not None
    notify.email_when_final(video)
    outbound.queue_final(video)  # rows only; manage.py deliver_notifications sends them


def _next_step_after_terminal(video: Video, now: datetime) -> datetime | None:
    if video.status == Video.Status.COMPLETED and video.asset_state == Video.Assets.PENDING:
        return now  # archive straight away: assets expire (about an hour at OpenAI)
    return None


# Why a job ended without a video, where the provider gave no reason of its own.
FINAL_WORDS: dict[str, str] = {
    Video.Status.CANCELLED: "The provider cancelled this job.",
    Video.Status.EXPIRED: "The provider let this job expire before it finished.",
}
CONTENT_URL_MAX_LENGTH = 2048


def _state_unknown(
    video: Video, remote: RemoteVideo, now: datetime, via: str, before: dict[str, Any]
) -> Video:
    """The provider does not say what state the job is in (new-api's `unknown`, or a status
    it invented): the row keeps its own status and asks again, backing off each time."""
    video.poll_errors = min(video.poll_errors + 1, 30)
    delay = max(back_off_delay(video.poll_errors), remote.poll_after or 0.0)
    video.last_error = (
        f"The provider reports its state as {_unknown_words(remote)}; "
        f"asking again in {_seconds(delay)} s."
    )
    video.last_polled_at = now
    video.next_poll_at = now + timedelta(seconds=delay)
    save_changed(video, before)
    if via in (StatusChange.Via.SUBMIT, StatusChange.Via.IMPORT):
        old = video.status if via != StatusChange.Via.IMPORT else ""
        history(video, old, video.status, via=via, note="The provider's state is unknown")
    return video


def _unknown_words(remote: RemoteVideo) -> str:
    raw = remote.raw_status
    if not raw or raw.casefold() == "unknown" or len(raw) > 40 or not raw.isprintable():
        return "unknown"
    return f"unknown (“{raw}”)"


def _seconds(delay: float) -> str:
    return f"{delay:.0f}" if delay >= 10 else f"{delay:.1f}".removesuffix(".0")


def _content_url(url: str | None) -> str:
    """The finished file's URL from the provider's object: http(s) and bounded, else ""."""
    if not url or len(url) > CONTENT_URL_MAX_LENGTH or not url.isprintable():
        return ""
    return url if url.lower().startswith(("https://", "http://")) else ""


def reject(*, video_id: int, code: str, message: str, param: str | None = None) -> None:
    """The provider refused the submission: a final failure, with its reason in words."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if param and param not in message:
            message = f"{message} (field: {param})"
        old = video.status
        video.submission = Video.Submission.REJECTED
        _fail(video, code[:100], message)
        history(video, old, video.status, via=StatusChange.Via.SUBMIT, note=f"Rejected: {code}")


def _fail(video: Video, code: str, message: str) -> None:
    """A final failure with its reason; nothing to fetch, nothing charged, its owner told."""
    video.status = Video.Status.FAILED
    video.error_code, video.error_message = code, message
    video.asset_state = Video.Assets.NONE
    video.next_poll_at = None
    video.last_error = ""
    _finish(video)
    video.save()
    waive_charge(video.pk)


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
        _finish(video)
        video.save()
        waive_charge(video.pk)
        history(video, old, video.status, via=StatusChange.Via.POLL, note="404 at the provider")


# --- submission: a POST that may have reached the provider is never sent again blindly ---------


def mark_sending(*, video_id: int, was: str) -> bool:
    """Record that the create/remix POST is about to go out, before it goes.

    Its own write, committed at once (the tracker runs in autocommit): a worker killed
    mid-POST leaves the row in SENDING, and whoever claims it next looks the job up instead of
    sending it again. Conditional on the state the caller saw, so a row deleted or decided
    meanwhile is not sent. False: it changed, send nothing.
    """
    return bool(
        Video.objects.filter(pk=video_id, submission=was).update(
            submission=Video.Submission.SENDING,
            sent_at=timezone.now(),
            submit_attempts=F("submit_attempts") + 1,
        )
    )


def wait_to_submit(
    *, video_id: int, submission: str, message: str, retry_after: float | None = None
) -> None:
    """Not submitted this time: PENDING if nothing was created, UNKNOWN if it may have been."""
    Video.objects.filter(pk=video_id, submission__in=Video.WAITING).update(submission=submission)
    back_off(video_id, message, retry_after)


def lookup_missed(*, video_id: int, note: str, message: str) -> None:
    """The lost submission is not in the provider's list yet: look again before deciding.

    The history row is the record of the look, and what tells the next one it is the second.
    """
    video = Video.objects.get(pk=video_id)
    history(video, video.status, video.status, via=StatusChange.Via.SUBMIT, note=note)
    wait_to_submit(video_id=video_id, submission=Video.Submission.UNKNOWN, message=message)


def unconfirm(*, video_id: int, message: str) -> None:
    """We cannot tell whether the provider made it, and must not guess: the user decides."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.submission not in Video.WAITING:
            return
        video.submission = Video.Submission.UNCONFIRMED
        video.next_poll_at = None
        video.last_error = message[:1000]
        video.save(update_fields=["submission", "next_poll_at", "last_error", "updated_at"])
        history(
            video, video.status, video.status, via=StatusChange.Via.SUBMIT, note="Not confirmed"
        )


def send_again(*, video_id: int) -> bool:
    """The user chose to send an unconfirmed job again: back to PENDING, once.

    The conditional UPDATE is the guard: a double click (or two tabs) moves it only once.
    """
    with transaction.atomic():
        moved = Video.objects.filter(pk=video_id, submission=Video.Submission.UNCONFIRMED).update(
            submission=Video.Submission.PENDING,
            next_poll_at=timezone.now(),
            poll_errors=0,
            last_error="",
        )
        if moved:
            video = Video.objects.get(pk=video_id)
            history(
                video,
                video.status,
                video.status,
                via=StatusChange.Via.LOCAL,
                note="Sent again at the user's request",
            )
    return bool(moved)


def give_up(*, video_id: int) -> bool:
    """The user gave up on an unconfirmed job: failed, and (like every failure) costs nothing."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.submission != Video.Submission.UNCONFIRMED:
            return False
        old = video.status
        # REJECTED: stopped for good, never sent again by a worker, and not counted as spend.
        video.submission = Video.Submission.REJECTED
        video.status = Video.Status.FAILED
        video.error_code = "not_confirmed"
        video.error_message = (
            "You gave up on this job: its submission could not be confirmed. If the provider "
            "did make the video, it is not shown or counted here; check the provider."
        )
        video.asset_state = Video.Assets.NONE
        video.next_poll_at = None
        video.last_error = ""
        video.save()
        waive_charge(video.pk)
        history(video, old, video.status, via=StatusChange.Via.LOCAL, note="Gave up: not confirmed")
    return True


def fail_unusable_answer(*, video_id: int, message: str, submitted: bool) -> None:
    """The provider answered with something we will not use (InvalidAnswer): a final failure.

    Not transient: asking again gets the same answer, so no back-off loop. `submitted`: it was
    the answer to our POST, so the job may exist there; it is never sent again from here.
    """
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        old = video.status
        if submitted:
            video.submission = Video.Submission.SUBMITTED  # a 2xx: the provider took it
        _fail(video, "invalid_provider_answer", message)
        via = StatusChange.Via.SUBMIT if submitted else StatusChange.Via.POLL
        history(video, old, video.status, via=via, note="Unusable answer from the provider")


# --- cancel: a waiting job is stopped here, a queued or running one at the provider -----------


def cancel_waiting(*, video_id: int) -> bool:
    """Cancel a job nobody has sent yet. False: a worker took it meanwhile (or it moved on).

    One conditional UPDATE from PENDING: mark_sending() moves PENDING to SENDING the same way,
    so exactly one of the two wins and a cancelled job is never sent. It leaves WAITING (no
    worker sends it) for WITHDRAWN: there is nothing at the provider.
    """
    with transaction.atomic():
        moved = Video.objects.filter(
            pk=video_id, submission=Video.Submission.PENDING, status__in=Video.ACTIVE
        ).update(
            submission=Video.Submission.WITHDRAWN,
            status=Video.Status.CANCELLED,
            asset_state=Video.Assets.NONE,
            next_poll_at=None,
            last_error="",
            updated_at=timezone.now(),
        )
        if moved:
            waive_charge(video_id)
            video = Video.objects.get(pk=video_id)
            history(
                video,
                Video.Status.QUEUED,
                Video.Status.CANCELLED,
                via=StatusChange.Via.LOCAL,
                note="Cancelled before it was sent",
            )
    return bool(moved)


def mark_cancelled(*, video_id: int) -> Video | None:
    """The provider accepted our cancel: tracking stops. None if it finished meanwhile.

    A job the provider had not started costs nothing; one it had started keeps its charge
    (the Videos API says nothing about partial billing, so the estimate stands).
    """
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.status in Video.TERMINAL:
            return None
        old = video.status
        video.status = Video.Status.CANCELLED
        video.asset_state = Video.Assets.NONE
        video.next_poll_at = None
        video.last_error = ""
        video.save()
        if not _had_started(old, video.progress):
            waive_charge(video.pk)
        history(video, old, video.status, via=StatusChange.Via.LOCAL, note="Cancelled")
    return video


def _had_started(status: str, progress: int) -> bool:
    return status == Video.Status.IN_PROGRESS or progress > 0


# --- charges: what each job cost, kept when the video is deleted ------------------------------


def open_charge(video: Video) -> Charge:
    """A new job's charge: the estimate, until the provider says otherwise or it fails."""
    charge, _ = Charge.objects.get_or_create(
        video=video,
        defaults={
            "owner_id": video.owner_id,
            "amount": video.cost_estimate,
            "basis": Charge.Basis.ESTIMATE,
            "at": video.requested_at,
            "provider_name": video.provider.name,
            "model": video.model,
            "size": video.size,
            "seconds": video.seconds,
            "prompt": video.prompt[:200],
        },
    )
    if video.status == Video.Status.FAILED:  # an import of a job that had already failed
        waive_charge(video.pk)
    return charge


def waive_charge(video_id: int) -> None:
    """A failed job, or one cancelled before it ran, costs nothing."""
    Charge.objects.filter(video_id=video_id).update(amount=Decimal("0"), basis=Charge.Basis.NONE)


def provider_cost(raw: dict[str, Any]) -> Decimal | None:
    """The provider's own figure for a job, where its answer carries one (`usage.cost` or
    `cost`, in dollars); None when it does not, or gives something that is not an amount."""
    usage = raw.get("usage")
    value = usage.get("cost") if isinstance(usage, dict) else None
    if value is None:
        value = raw.get("cost")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e6"):
        return None
    return amount.quantize(Decimal("0.0001"))


def mark_assets_expired(*, video_id: int) -> None:
    Video.objects.filter(pk=video_id).update(
        asset_state=Video.Assets.EXPIRED,
        next_poll_at=None,
        last_error="The provider's download links expired before the files could be archived.",
    )


def settle(video_id: int) -> None:
    """Nothing left to do for this row: no worker looks at it again by itself."""
    Video.objects.filter(pk=video_id).update(next_poll_at=None)


def back_off(video_id: int, message: str, retry_after: float | None = None) -> None:
    """Try again later: exponential in consecutive failures, or what the provider asked for."""
    video = Video.objects.get(pk=video_id)
    errors = min(video.poll_errors + 1, 30)
    delay = back_off_delay(errors, retry_after)
    Video.objects.filter(pk=video_id).update(
        poll_errors=errors,
        last_error=message[:1000],
        next_poll_at=timezone.now() + timedelta(seconds=delay),
    )
