"""Sending a recorded create, remix, edit or extension, exactly once per user action.

A POST that may have reached the provider is never sent again blindly:

    PENDING --mark_sending (committed)--> SENDING --POST--> SUBMITTED
                                                       \\--> PENDING  (nothing was sent: connect
                                                       |             failure, 429)
                                                       \\--> UNKNOWN  (maybe created: timeout,
                                                                     dropped, 5xx, 409, bad 2xx)
    SENDING (a worker died mid-POST) or UNKNOWN, on the next claim:
      provider honours Idempotency-Key -> the same POST again IS the lookup (it returns the job)
      provider can list                -> look for it: found -> SUBMITTED; surely absent -> send
      otherwise, or the list is unusable -> UNCONFIRMED: the user decides (services.manage)

The Idempotency-Key is the row's own, on every attempt.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DataError
from django.utils import timezone

from jobs import lifecycle
from jobs.lib.images import image_type
from jobs.models import StatusChange, Video
from jobs.provider.client import ProviderClient
from jobs.provider.errors import (
    AuthenticationFailed,
    InvalidAnswer,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from jobs.provider.ids import decode_litellm
from jobs.provider.schema import RemoteVideo

log = logging.getLogger(__name__)

# A lost job was created between a little before we sent it (the provider's clock may be
# behind ours) and now (or a little after, if its clock is ahead). Two minutes covers any clock
# kept by NTP; a wider window only makes every lookup read more of a busy provider's list
# (at 30 % faults, each extra page is another chance for the lookup to fail and wait).
LOOKUP_WINDOW = timedelta(minutes=2)
# How many of the provider's newest jobs one lookup reads at most (ten pages of 100).
LOOKUP_MAX_JOBS = 1000
LOOKUP_MISSED_NOTE = "Looked for it in the provider's job list: not there yet"

CANNOT_LIST = (
    "Could not confirm the submission: {what}, and it cannot list its jobs, so we cannot tell "
    "whether it made the video. Sending again may create (and bill) a second video."
)
LIST_UNUSABLE = (
    "Could not confirm the submission: {what}, and its job list could not tell whether it made "
    "the video ({why}). Sending again may create (and bill) a second video."
)
UNUSABLE_ANSWER = (
    "The provider accepted the request, but its answer could not be used: {why}. The provider "
    "may have made the video; check it there before sending again."
)


def send_submission(video: Video) -> None:
    """Send (or, after a lost answer, first look up) the POST of a claimed video."""
    if video.submission == Video.Submission.PENDING:
        _send_once(video, maybe_created=False)
    elif video.provider.honours_idempotency:
        # The provider answers a repeated key with the first job: re-sending is the lookup.
        _send_once(video, maybe_created=True)
    elif _surely_not_created(video):
        _send_once(video, maybe_created=False)


def _send_once(video: Video, *, maybe_created: bool) -> None:
    """One POST, recorded as on its way first. `maybe_created`: an earlier one may have landed."""
    if not lifecycle.mark_sending(video_id=video.pk, was=video.submission):
        log.info("video %s changed before it was sent; not sending", video.pk)
        return
    client = video.provider.client()
    try:
        remote = _send(client, video)
    except ProviderUnavailable as exc:  # includes rate limiting
        sent = _may_have_created(exc)
        after = " Checking whether the provider made it before sending again." if sent else ""
        lifecycle.wait_to_submit(
            video_id=video.pk,
            submission=Video.Submission.UNKNOWN
            if sent or maybe_created
            else Video.Submission.PENDING,
            message=f"Waiting to submit: {str(exc).rstrip('.')}.{after}",
            retry_after=exc.retry_after if isinstance(exc, ProviderRateLimited) else None,
        )
    except InvalidAnswer as exc:  # a 2xx we will not use: the job may exist, never re-send
        _fail_unusable(video, exc.message)
    except ProviderRejected as exc:  # the provider said no: show why, keep the prompt
        lifecycle.reject(
            video_id=video.pk,
            code=exc.code or f"http_{exc.status}",
            message=exc.message,
            param=exc.param,
        )
    except ProviderError as exc:  # any other failure: it may have landed, so look it up first
        lifecycle.wait_to_submit(
            video_id=video.pk,
            submission=Video.Submission.UNKNOWN,
            message=f"Waiting to submit: {exc}",
        )
    else:
        _take(video, remote)


def _may_have_created(exc: ProviderUnavailable) -> bool:
    """Whether a failed POST may still have created the job at the provider.

    Only a 429 (refused before any work) and a request that never left (connection refused,
    DNS, TLS: no status, and the client says nothing was sent) surely created nothing. Any 5xx
    counts as maybe: a server may fail after it made the job (500/503 included, not only the
    gateway codes the client marks), as may a timeout, a dropped connection, a 409 or a 2xx
    whose body could not be read.
    """
    if isinstance(exc, ProviderRateLimited):
        return False
    return exc.outcome_unknown or exc.status is not None


def _surely_not_created(video: Video) -> bool:
    """After a lost answer (UNKNOWN) or a worker killed mid-POST (SENDING): did the job land?

    Acts on every other outcome itself (found: applied; not yet visible: look again later;
    cannot tell: UNCONFIRMED; lookup failed: back off and look again, never a send).
    """
    what = (
        "the dashboard stopped while the request was on its way"
        if video.submission == Video.Submission.SENDING
        else "the provider did not answer in time"
    )
    if not video.provider.can_list:
        lifecycle.unconfirm(video_id=video.pk, message=CANNOT_LIST.format(what=what))
        return False
    try:
        found, doubt = _find_lost_submission(video.provider.client(), video)
    except (InvalidAnswer, ProviderRejected) as exc:
        if isinstance(exc, AuthenticationFailed):  # an admin can fix the key: keep looking
            _lookup_failed(video, exc)
        else:  # asking again gets the same answer
            message = LIST_UNUSABLE.format(what=what, why=exc.message)
            lifecycle.unconfirm(video_id=video.pk, message=message)
        return False
    except ProviderError as exc:  # down or slow: look again later, never fall through to a send
        _lookup_failed(video, exc)
        return False
    if found is not None:
        log.info("video %s: found the lost submission as %s", video.pk, found.id)
        _take(video, found)
        return False
    if doubt is not None:
        lifecycle.unconfirm(video_id=video.pk, message=LIST_UNUSABLE.format(what=what, why=doubt))
        return False
    if not _had_time_to_show(video):
        lifecycle.lookup_missed(
            video_id=video.pk,
            note=LOOKUP_MISSED_NOTE,
            message="Checking whether the provider made it: not in its job list yet.",
        )
        return False
    log.info("video %s: the lost submission is not at the provider; sending again", video.pk)
    return True


def _lookup_failed(video: Video, exc: ProviderError) -> None:
    lifecycle.wait_to_submit(
        video_id=video.pk,
        submission=Video.Submission.UNKNOWN,
        message=f"Checking whether the provider made it: could not list its jobs: {exc}",
        retry_after=exc.retry_after,
    )


def _sent_at(video: Video) -> datetime:
    return video.sent_at or video.requested_at  # rows sent before sent_at was recorded


def _had_time_to_show(video: Video) -> bool:
    """A job absent from the list now was not made, once the provider had time to list it."""
    sent = _sent_at(video)
    if (timezone.now() - sent).total_seconds() >= settings.SUBMIT_LOOKUP_SETTLE_SECONDS:
        return True
    earlier = StatusChange.objects.filter(
        video_id=video.pk, via=StatusChange.Via.SUBMIT, note=LOOKUP_MISSED_NOTE, at__gte=sent
    )
    return earlier.exists()  # this is the second look since it was sent


def _find_lost_submission(
    client: ProviderClient, video: Video
) -> tuple[RemoteVideo | None, str | None]:
    """Look for the job among the provider's newest ones: (the job, or None and a doubt).

    Matches on prompt, model (creates) or source (remixes, edits, extensions), and a created_at
    around when it was sent; a job already linked to another row is somebody else's. The
    doubt, when not None, says why its absence proves nothing.
    """
    sent = _sent_at(video)
    since, until = sent - LOOKUP_WINDOW, timezone.now() + LOOKUP_WINDOW
    doubt = None
    for seen, remote in enumerate(client.iter_all(limit=100), start=1):
        if remote.created_at is not None and remote.created_at < since:
            break  # newest first: everything further is older still
        if seen > LOOKUP_MAX_JOBS:
            return None, f"its newest {LOOKUP_MAX_JOBS} jobs do not reach back to when it was sent"
        if remote.created_at is not None and remote.created_at > until:
            continue
        if not _same_request(remote, video):
            continue
        linked = Video.objects.filter(provider_id=video.provider_id, video_id=remote.id)
        other = linked.values_list("pk", "submission").first()
        if other is None:
            return remote, None
        if doubt is None and _imported_since(other, sent):
            # A sync may have imported our own job before this lookup ran.
            doubt = f"a job matching it was imported as #{other[0]}, and may be this one"
    return None, doubt


def _imported_since(row: tuple[int, str], sent: datetime) -> bool:
    pk, submission = row
    if submission != Video.Submission.IMPORTED:
        return False
    imports = StatusChange.objects.filter(video_id=pk, via=StatusChange.Via.IMPORT, at__gte=sent)
    return imports.exists()


def _same_request(remote: RemoteVideo, video: Video) -> bool:
    if (remote.prompt or "").strip() != video.prompt.strip():
        return False
    if video.kind in (Video.Kind.EDIT, Video.Kind.EXTENSION):
        # The reference does not say that an edit or extension names its source (in
        # remixed_from_video_id): one naming another source is not ours, one naming none may be.
        named = remote.remixed_from_video_id
        if named and not _same_source(named, video.remixed_from_video_id):
            return False
        if video.kind == Video.Kind.EXTENSION and remote.seconds not in ("", video.seconds):
            return False  # an extension is as long as the source and the added part together
        return remote.model in ("", video.model)
    if video.remixed_from_video_id:
        return _same_source(remote.remixed_from_video_id, video.remixed_from_video_id)
    # A create: not a remix, and the model we asked for (where the provider says which).
    return not remote.remixed_from_video_id and remote.model in ("", video.model)


def _same_source(named: str | None, ours: str) -> bool:
    """Whether the source an answer names is the one we sent: LiteLLM names it by the
    upstream's raw id, which our (LiteLLM) id of it carries inside."""
    if not named:
        return False
    gateway = decode_litellm(ours)
    return named == ours or (gateway is not None and named == gateway.raw)


def _take(video: Video, remote: RemoteVideo) -> None:
    """The provider's job is this row's submission."""
    try:
        lifecycle.apply_snapshot(video_id=video.pk, remote=remote, via=StatusChange.Via.SUBMIT)
    except DataError:
        # The database refused a field (too long, a NUL) the client let through: the job
        # exists, so it must not be left to be looked up and re-sent.
        log.warning("video %s: the provider's answer does not fit the database", video.pk)
        _fail_unusable(video, "a field is too long or holds characters that cannot be stored")


def _fail_unusable(video: Video, why: str) -> None:
    why = why.rstrip(".")
    message = UNUSABLE_ANSWER.format(why=why[:1].lower() + why[1:])  # mid-sentence
    lifecycle.fail_unusable_answer(video_id=video.pk, message=message, submitted=True)


def _send(client: ProviderClient, video: Video) -> RemoteVideo:
    key = str(video.idempotency_key)
    source = video.remixed_from_video_id
    if video.kind == Video.Kind.EDIT:
        return client.edit(source, video.prompt, idempotency_key=key)
    if video.kind == Video.Kind.EXTENSION:
        if not video.added_seconds.isdigit():  # the service checks it; a hand-edited row
            raise ProviderRejected(
                "The seconds to add are not a whole number, so nothing was sent.",
                code="invalid_added_seconds",
            )
        added = int(video.added_seconds)
        return client.extend(source, video.prompt, added, model=video.model, idempotency_key=key)
    if source:  # a remix (also one recorded before `kind` existed)
        return client.remix(source, video.prompt, idempotency_key=key)
    reference = None
    if video.input_reference:
        video.input_reference.open("rb")
        name = str(video.input_reference.name)
        reference = (Path(name).name, video.input_reference.file, image_type(name))
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
