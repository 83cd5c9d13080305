"""What a user hears about their own jobs: toasts with the running count, and e-mail."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from jobs.models import Video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notices:
    running: int  # my jobs still moving, for the tab title
    items: list[dict[str, str]]  # finished since I was last told, each told once


def take_notifications(*, user: User | AnonymousUser) -> Notices:
    """One query for my live rows; a second write only when something finished."""
    if isinstance(user, AnonymousUser):
        return Notices(0, [])
    fields = ("pk", "status", "submission", "prompt", "error_message", "notify_pending")
    mine = Video.objects.filter(owner=user).order_by().only(*fields)
    # A UNION of two equality lookups, each served by its own (owner, …) index, reads only the
    # live rows; `owner AND (notify OR active)` could only use the owner index and read every
    # row the user ever made (bench/p1_table_poll.py). No ORDER BY on the UNION: SQLite would
    # then merge through the owner index again; the few live rows are sorted here instead.
    rows = sorted(
        mine.filter(notify_pending=True).union(mine.active()).order_by(), key=lambda row: -row.pk
    )
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


def email_when_final(video: Video) -> None:
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
    context = {
        "video": video,
        "ok": ok,
        "short": short,
        "outcome": "is ready" if ok else "failed",
        "site_url": settings.SITE_URL,
    }
    subject = render_to_string("jobs/email/final_subject.txt", context)
    try:
        send_mail(
            " ".join(subject.split()),
            render_to_string("jobs/email/final_body.txt", context),
            None,  # DEFAULT_FROM_EMAIL
            [video.owner.email],
        )
    except Exception:  # a broken mail server must not break the tracker that got here
        log.exception("could not e-mail the owner of video %s", video.pk)
        return False
    return True
