"""django.tasks wrappers: the fast path for one-off work (submit, archive).

The tracker (`manage.py track_videos`) finds the same work in the database if a task is lost,
so a task only ever says "look at this video now". Arguments are ids: they must be JSON.
Nothing below this module imports it: services nudge after their writes.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from django.tasks import task

from jobs import notify, tracker

log = logging.getLogger(__name__)


@task()
def advance_video(video_id: int) -> bool:
    """Submit, refresh or archive one video, if it is due and nobody else holds it."""
    advanced = tracker.advance_video(video_id=video_id)
    if advanced and tracker.archive_is_due(video_id):
        # It completed: fetch its files before the provider's links expire.
        nudge_on_commit(video_id)
    return advanced


def nudge_on_commit(video_id: int) -> None:
    """Ask the task worker to look at this video once the current transaction commits."""
    transaction.on_commit(partial(nudge, video_id))


def nudge(video_id: int) -> None:
    """Ask the task worker to look at this video now (its row is already saved)."""
    try:
        advance_video.enqueue(video_id)
    except Exception:  # a broken queue must not lose the job: the tracker will find it
        log.exception("could not enqueue video %s; the tracker will pick it up", video_id)


@task()
def email_mentions(mention_ids: list[int]) -> int:
    """E-mail the people newly @named in a comment (jobs.notify; NOTIFY_BY_EMAIL)."""
    return notify.send_mention_emails(mention_ids)


def email_mentions_later(mention_ids: list[int]) -> None:
    """Queue the mention e-mails (called after the comment's commit)."""
    try:
        email_mentions.enqueue(mention_ids)
    except Exception:  # the toast still tells them; a broken queue loses only the e-mail
        log.exception("could not enqueue the e-mail for mentions %s", mention_ids)
