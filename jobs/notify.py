"""What a user hears: toasts about their own jobs with the running count, and about comments
that @mention them; e-mail for both where enabled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from jobs.lib.timecodes import timecode_label
from jobs.models import Mention, Video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notices:
    running: int  # my jobs still moving, for the tab title
    items: list[dict[str, str]]  # finished since I was last told, each told once


def take_notifications(*, user: User | AnonymousUser, mentions: bool = True) -> Notices:
    """One query for my live rows; a second write only when something finished.

    `mentions`: also take comments that @mention me (one more query). Pages do, polls do not:
    a poll's queries are budgeted (bench/p1_table_poll.py), and a mention waits for my next page.
    """
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
    if mentions:
        items.extend(_take_mentions(user))
    return Notices(sum(1 for r in rows if r.is_active), items)


def _short(text: str, limit: int = 60) -> str:
    one_line = " ".join(text.split())  # a toast or a mail header: one line
    return one_line[:limit] + ("…" if len(one_line) > limit else "")


def _take_mentions(user: User) -> list[dict[str, str]]:
    """Comments that @mention me, not yet shown: each toasted once (Mention.seen_at).

    One query on the partial index of unseen mentions; a write only when there are some.
    """
    unseen = list(
        Mention.objects.filter(user=user, seen_at__isnull=True)
        .select_related("comment__author")
        .order_by("-pk")[:10]
    )
    if not unseen:
        return []
    Mention.objects.filter(pk__in=[m.pk for m in unseen]).update(seen_at=timezone.now())
    items = []
    for mention in unseen:
        comment = mention.comment
        who = comment.author.get_username() if comment.author else "Someone"
        url = reverse("jobs:detail", args=[comment.video_id]) + f"#comment-{comment.pk}"
        items.append(
            {
                "id": f"mention-{mention.pk}",
                "level": "info",
                "text": f"{who} mentioned you on #{comment.video_id}: “{_short(comment.body)}”",
                "url": url,
            }
        )
    return items


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


def send_mention_emails(mention_ids: list[int]) -> int:
    """E-mail each person newly @named in a comment (if they have an address and the comment
    still stands); returns how many were sent. Run by the task worker (tasks.email_mentions)."""
    mentions = Mention.objects.filter(
        pk__in=mention_ids[:50], comment__removed_at__isnull=True
    ).select_related("user", "comment__author", "comment__video")
    sent = 0
    for mention in mentions:
        if not mention.user.email:
            continue
        comment = mention.comment
        context = {
            "comment": comment,
            "who": comment.author.get_username() if comment.author else "Someone",
            "short": _short(comment.video.prompt),
            "at": f" at {timecode_label(comment.timecode)}" if comment.timecode is not None else "",
            "url": settings.SITE_URL
            + reverse("jobs:detail", args=[comment.video_id])
            + f"#comment-{comment.pk}",
        }
        subject = render_to_string("jobs/email/mention_subject.txt", context)
        try:
            send_mail(
                " ".join(subject.split()),
                render_to_string("jobs/email/mention_body.txt", context),
                None,  # DEFAULT_FROM_EMAIL
                [mention.user.email],
            )
        except Exception:  # one bad address or a mail server hiccup must not stop the rest
            log.exception("could not e-mail mention %s", mention.pk)
            continue
        sent += 1
    return sent
