"""Looking after existing jobs and providers: delete, cancel, refresh, archive again, check
connection, and the user's decision on a send that could not be confirmed."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from jobs import lifecycle, tasks
from jobs.archive import delete_files
from jobs.lib.keys import provider_key_variable
from jobs.models import ARCHIVING, AuditEvent, Charge, Provider, Video
from jobs.provider.errors import (
    NotFound,
    NotOffered,
    NoVideosApi,
    ProviderError,
    ProviderRejected,
)
from jobs.services.audit import record


def delete_video(*, video: Video, user: User) -> str:
    """Delete at the provider too, then locally; returns what happened, in words.

    Where the provider cannot delete (its capability is off, or DELETE has no route there:
    405, or a 404 that is not the API's own), the video goes from here only, files too, and
    the words say that the provider keeps its copy until it expires. Owner or staff only.
    """
    if not video.can_be_managed_by(user):
        raise PermissionDenied("Only the person who submitted it, or staff, can delete it.")
    if video.is_active and video.submission == Video.Submission.SUBMITTED:
        raise ValidationError("This job is still running; the provider only deletes finished jobs.")
    if video.submission in (*Video.WAITING, Video.Submission.UNCONFIRMED):
        # Take it away from the workers first so it cannot be sent while we delete it.
        if not Video.objects.filter(pk=video.pk, submission=video.submission).update(
            next_poll_at=None, submission=Video.Submission.REJECTED
        ):
            raise ValidationError("The job changed while deleting; try again.")
        video.refresh_from_db()
        if video.submission != Video.Submission.REJECTED:
            raise ValidationError("The job was just submitted; wait until it finishes.")
        lifecycle.waive_charge(video.pk)  # stopped before the provider confirmed it: $0
    done = f"Deleted #{video.pk}."  # never reached the provider: nothing there to delete
    if video.video_id and video.submission in (
        Video.Submission.SUBMITTED,
        Video.Submission.IMPORTED,
    ):
        done = _delete_at_provider(video)
    files = [
        str(f.name)
        for f in (
            video.video_file,
            video.thumbnail_file,
            video.spritesheet_file,
            video.input_reference,
        )
        if f
    ]
    record(user, AuditEvent.Action.DELETED, video, prompt=video.prompt[:200], outcome=done)
    video.delete()
    delete_files(files)
    return done


def _delete_at_provider(video: Video) -> str:
    """DELETE the provider's copy; the words for the user, or a ValidationError if it failed."""
    if video.provider.can_delete:
        try:
            video.provider.client().delete(video.video_id or "")
        except NotFound:  # the API's own 404: already gone there (expired or deleted)
            return f"Deleted #{video.pk}, here and at the provider."
        except NotOffered:  # the dialect has no DELETE (OpenRouter): nothing was sent
            pass
        except ProviderRejected as exc:
            if exc.status not in (404, 405):  # a 404 here is NoVideosApi: not the API's own
                raise ValidationError(f"The provider could not delete it: {exc}") from exc
            # No DELETE route there (LiteLLM, new-api): removed here only, as below.
        except ProviderError as exc:
            raise ValidationError(f"The provider could not delete it: {exc}") from exc
        else:
            return f"Deleted #{video.pk}, here and at the provider."
    said = f"Deleted #{video.pk} here. “{video.provider}” cannot delete its copies"
    if video.expires_at is None:
        return f"{said}, so the provider keeps its copy until it expires."
    when = f"{timezone.localtime(video.expires_at):%Y-%m-%d %H:%M %Z}"
    if video.expires_at <= timezone.now():
        return f"{said}; its copy expired at {when}."
    return f"{said}, so the provider keeps its copy until it expires ({when})."


def send_again(*, video_id: int, user: User) -> None:
    """The user's decision on an unconfirmed send: send it once more (it may make a second video).

    Back to PENDING exactly once (a conditional UPDATE): a double click sends nothing twice.
    The same Idempotency-Key goes out again.
    """
    _may_decide(video_id, user)
    if not lifecycle.send_again(video_id=video_id):
        raise ValidationError(_nothing_to_decide(video_id))
    tasks.nudge_on_commit(video_id)


def give_up(*, video_id: int, user: User) -> None:
    """The user's decision on an unconfirmed send: stop here; a failed job costs nothing."""
    _may_decide(video_id, user)
    if not lifecycle.give_up(video_id=video_id):
        raise ValidationError(_nothing_to_decide(video_id))


def cancel_video(*, video_id: int, user: User) -> str:
    """Cancel a job: here if nobody has sent it yet, else at the provider where it can.

    Returns what happened in words, with what was charged. Only the owner or staff may.
    """
    video = Video.objects.select_related("provider").get(pk=video_id)
    if not video.can_be_managed_by(user):
        raise PermissionDenied("Only the person who submitted it, or staff, can cancel it.")
    if not video.is_active:
        raise ValidationError(f"#{video.pk} is “{video.display_status}”: there is nothing to stop.")
    if video.submission == Video.Submission.PENDING and lifecycle.cancel_waiting(video_id=video.pk):
        record(user, AuditEvent.Action.CANCELLED, video, before_it_was_sent=True)
        return f"Cancelled #{video.pk} before it was sent: $0.00 charged."
    video.refresh_from_db()  # a worker may have taken it in the meantime
    if not video.video_id:
        raise ValidationError(
            f"#{video.pk} is being sent to the provider right now; cancel it once the "
            "provider has confirmed it (in a moment)."
        )
    reason = cancel_refusal(video.provider)
    if reason:
        raise ValidationError(reason)
    try:
        video.provider.client().delete(video.video_id)
    except NotFound:
        lifecycle.forget(video_id=video.pk)
        raise ValidationError("The provider no longer knows this job.") from None
    except ProviderError as exc:
        raise ValidationError(f"The provider could not cancel it: {exc}") from exc
    done = lifecycle.mark_cancelled(video_id=video.pk)
    if done is None:
        raise ValidationError(f"#{video.pk} finished before the cancel arrived.")
    record(user, AuditEvent.Action.CANCELLED, done)
    return f"Cancelled #{video.pk} at the provider: {charge_words(done)}."


def cancel_refusal(provider: Provider) -> str:
    """Why a queued or running job of this provider has no Cancel button ("" if it has one)."""
    if provider.can_cancel:
        return ""
    return (
        f"“{provider}” cannot cancel a job once it is queued (the Videos API only deletes "
        "finished jobs), so this one runs to the end."
    )


def charge_words(video: Video) -> str:
    """What a stopped job cost, for the message and the row."""
    charge = Charge.objects.filter(video=video).first()
    if charge is None or charge.basis == Charge.Basis.NONE:
        return "$0.00 charged, it was cancelled before it started"
    return f"${charge.amount:.2f} charged, it had already started"


def _may_decide(video_id: int, user: User) -> None:
    if not Video.objects.get(pk=video_id).can_be_managed_by(user):
        raise PermissionDenied("Only the person who submitted it, or staff, can decide this.")


def _nothing_to_decide(video_id: int) -> str:
    video = Video.objects.get(pk=video_id)
    return (
        f"There is nothing to decide for #{video.pk}: it is no longer waiting for a decision "
        f"(it is “{video.display_status}” now)."
    )


def rearchive(*, video_id: int, reason: str = "") -> None:
    """Admin action: fetch the assets again (e.g. after files were lost, or it was BROKEN).

    Starts afresh: the failed attempts that made it BROKEN no longer count."""
    Video.objects.filter(pk=video_id, status=Video.Status.COMPLETED).update(
        asset_state=Video.Assets.PENDING,
        next_poll_at=timezone.now(),
        poll_errors=0,
        archive_attempts=0,
        last_error=reason,
    )
    tasks.nudge(video_id)


def refresh_now(*, video_id: int) -> None:
    """Admin/webhook: look at this video at the next opportunity."""
    Video.objects.filter(pk=video_id).filter(Q(status__in=Video.ACTIVE) | ARCHIVING).exclude(
        submission__in=Video.HALTED
    ).update(next_poll_at=timezone.now())
    tasks.nudge(video_id)


def check_provider(*, provider: Provider) -> tuple[int, str]:
    """Check connection: plain words on whether the base URL speaks the Videos API, whether the
    key is accepted, and what works there. Stores what it found on the provider
    (`checked_at`, `check_report`: one line per finding, then the suggested flags as JSON,
    which `apply_check` sets). A refused key is an ERROR, anything that does not work a
    WARNING."""
    try:
        provider_key_variable(provider.api_key_env)
    except ValidationError as exc:
        return messages.ERROR, " ".join(exc.messages)
    if not provider.api_key:
        return messages.ERROR, (
            f"the environment variable {provider.api_key_env} is not set, so "
            "there is no API key to send."
        )
    try:
        report = provider.client().check()
    except NoVideosApi:
        text = (
            "this provider does not offer the Videos API (GET /videos "
            "answered 404). OpenAI's own hosted API shut down on 2026-09-24; "
            "use a gateway or re-host that speaks it."
        )
        _store_check(provider, [text[0].upper() + text[1:]])
        return messages.ERROR, text
    except ProviderError as exc:
        return messages.WARNING, f"could not check: {exc}"
    lines = [report.message]
    lines += [f"{CHECK_MARKS[f.works]} {f.capability}: {f.words}" for f in report.findings]
    if report.suggested:
        lines.append(SUGGESTED_PREFIX + json.dumps(report.suggested, sort_keys=True))
    _store_check(provider, lines)
    if report.key_accepted is False:
        key = report.finding("key")
        return messages.ERROR, (
            f"the Videos API answered, but the key was refused: {key.words if key else ''}"
        )
    models = ", ".join(provider.model_ids()) or "none configured"
    summary = report.message[0].lower() + report.message[1:]
    text = f"{summary} Models here: {models}."
    broken = any(f.works is False for f in report.findings)
    if report.key_accepted is None or broken:
        return messages.WARNING, text
    return messages.SUCCESS, text


# How a stored finding line starts: works, does not work, could not tell.
CHECK_MARKS = {True: "✓", False: "✗", None: "?"}
SUGGESTED_PREFIX = "Suggested settings: "
# The flags a check may set, and their names in words.
CHECKED_FLAGS = {
    "can_list": "list / import",
    "can_remix": "remix",
    "can_edit": "edit",
    "can_extend": "extend",
    "can_delete": "delete",
    "serves_variants": "serves thumbnails and spritesheets",
}


def _store_check(provider: Provider, lines: list[str]) -> None:
    provider.checked_at = timezone.now()
    provider.check_report = "\n".join(lines)
    provider.save(update_fields=["checked_at", "check_report"])


def check_findings(provider: Provider) -> list[tuple[int, str]]:
    """The last check's findings as admin messages: a warning for what does not work."""
    found = []
    for line in provider.check_report.splitlines():
        mark = line[:1]
        if mark in ("✓", "?"):
            found.append((messages.INFO, line))
        elif mark == "✗":
            found.append((messages.WARNING, line))
    return found


def apply_check(*, provider: Provider) -> tuple[int, str]:
    """Set the capability flags from what the last Check connection verified."""
    suggested: dict[str, object] = {}
    for line in provider.check_report.splitlines():
        if line.startswith(SUGGESTED_PREFIX):
            try:
                loaded = json.loads(line.removeprefix(SUGGESTED_PREFIX))
            except ValueError:
                loaded = {}
            suggested = loaded if isinstance(loaded, dict) else {}
    flags = {
        name: value
        for name in CHECKED_FLAGS  # in the admin's order, whatever order was stored
        if isinstance(value := suggested.get(name), bool)
    }
    if not flags:
        return messages.WARNING, (
            "there is nothing to apply: run “Check connection” first (a check that could "
            "verify nothing suggests nothing)."
        )
    changed = [name for name, value in flags.items() if getattr(provider, name) != value]
    for name, value in flags.items():
        setattr(provider, name, value)
    provider.save(update_fields=list(flags))
    said = [f"{CHECKED_FLAGS[name]} {'on' if flags[name] else 'off'}" for name in changed]
    if not said:
        return messages.INFO, "the settings already match what the last check found."
    return messages.SUCCESS, "set from the last check: " + ", ".join(said) + "."
