"""Sending a recorded create or remix to the provider, exactly once per user action."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from jobs import lifecycle
from jobs.lib.images import image_type
from jobs.models import StatusChange, Video
from jobs.provider.client import ProviderClient
from jobs.provider.errors import ProviderRateLimited, ProviderRejected, ProviderUnavailable
from jobs.provider.schema import RemoteVideo

log = logging.getLogger(__name__)


def send_submission(video: Video) -> None:
    """Send the create/remix call for a claimed video.

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
        lifecycle.back_off(
            video.pk,
            f"Waiting to submit: {exc}",
            exc.retry_after if isinstance(exc, ProviderRateLimited) else None,
        )
        return
    except ProviderRejected as exc:  # the provider said no: show why, keep the prompt
        lifecycle.reject(
            video_id=video.pk,
            code=exc.code or f"http_{exc.status}",
            message=exc.message,
            param=exc.param,
        )
        return
    lifecycle.apply_snapshot(video_id=video.pk, remote=remote, via=StatusChange.Via.SUBMIT)


def _send(client: ProviderClient, video: Video) -> RemoteVideo:
    key = str(video.idempotency_key)
    if video.remixed_from_video_id:
        return client.remix(video.remixed_from_video_id, video.prompt, idempotency_key=key)
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
