"""Comments at a moment in a video: write, reply (one level), edit your own, remove (yours, or
any as staff); @names become Mention rows, each person told once (jobs.notify)."""

from __future__ import annotations

import math
import re
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import tasks
from jobs.lib.timecodes import timecode_label
from jobs.models import COMMENT_MAX_LENGTH, AuditEvent, Comment, Mention, Video
from jobs.outbound import queue_event
from jobs.services import audit

# "@name" after a space or punctuation, not inside an address (ann@example.com mentions nobody).
# Usernames may hold letters, digits and @ . + - _; a trailing "." or "-" is the sentence's.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-]{1,150})")
MAX_MENTIONS = 20  # per comment: a pasted list of names must not page the whole team
SLACK_SECONDS = 1.0  # a player's currentTime can run a little past the advertised length


def mentioned_names(body: str) -> list[str]:
    """The distinct @names in `body`, in order, lower-cased, at most MAX_MENTIONS."""
    names: list[str] = []
    for match in MENTION.finditer(body):
        name = match.group(1).rstrip(".-").lower()
        if name and name not in names:
            names.append(name)
    return names[:MAX_MENTIONS]


def clean_body(body: str) -> str:
    # NUL cannot be stored in PostgreSQL text; line endings count once, as the browser shows them.
    text = body.replace("\x00", "").replace("\r\n", "\n").strip()
    if not text:
        raise ValidationError({"body": "Write something first: the comment is empty."})
    if len(text) > COMMENT_MAX_LENGTH:
        raise ValidationError(
            {
                "body": f"A comment can be at most {COMMENT_MAX_LENGTH:,} characters; "
                f"this one has {len(text):,}."
            }
        )
    return text


def video_length(video: Video) -> int | None:
    """The longest the video can be, in seconds (an extension adds its seconds), if known."""
    parts = [int(v) for v in (video.seconds, video.added_seconds) if v.isdigit()]
    return sum(parts) if parts else None


def clean_timecode(video: Video, timecode: float | None) -> float | None:
    if timecode is None:
        return None
    if not math.isfinite(timecode) or timecode < 0:
        raise ValidationError(
            {"timecode": "The moment must be a time in the video, in seconds from its start."}
        )
    length = video_length(video)
    if length is not None and timecode > length + SLACK_SECONDS:
        raise ValidationError(
            {
                "timecode": f"{timecode_label(timecode)} is past the end of this "
                f"{length}-second video."
            }
        )
    return round(timecode, 3)


def _mentioned_users(text: str, author: User) -> list[User]:
    names = mentioned_names(text)
    if not names:
        return []
    by_name = Q()
    for name in names:
        by_name |= Q(username__iexact=name)
    return list(User.objects.filter(by_name, is_active=True).exclude(pk=author.pk))


def _sync_mentions(comment: Comment, text: str, author: User) -> list[Mention]:
    """Make the comment's Mention rows match its words; returns the rows for new names only,
    so an edit tells only the people it newly names (and someone already told is not told
    again while their name stays)."""
    wanted = {u.pk for u in _mentioned_users(text, author)}
    Mention.objects.filter(comment=comment).exclude(user__in=wanted).delete()
    have = set(Mention.objects.filter(comment=comment).values_list("user", flat=True))
    new = Mention.objects.bulk_create(
        Mention(comment=comment, user_id=pk) for pk in sorted(wanted - have)
    )
    if new and settings.NOTIFY_BY_EMAIL:
        # E-mail from the task worker, after the commit: a slow mail server never holds a request.
        transaction.on_commit(partial(tasks.email_mentions_later, [m.pk for m in new]))
    return new


@transaction.atomic
def add_comment(
    *,
    user: User,
    video: Video,
    body: str,
    timecode: float | None = None,
    parent: Comment | None = None,
) -> Comment:
    """A comment at `timecode` seconds (None: on the whole video), or a reply in a thread.

    A reply joins its thread's first comment (threads are one level deep) and sits at the
    thread's moment, so it carries no timecode of its own.
    """
    if not user.is_authenticated:
        raise PermissionDenied("Log in to comment.")
    text = clean_body(body)
    if parent is not None:
        if parent.video_id != video.pk:
            raise ValidationError("That comment belongs to another video.")
        if parent.parent_id is not None:
            parent = Comment.objects.get(pk=parent.parent_id)
        if parent.removed_at is not None:
            raise ValidationError("That comment was removed; start a new comment instead.")
        timecode = None
    else:
        timecode = clean_timecode(video, timecode)
    comment = Comment.objects.create(
        video=video, author=user, parent=parent, timecode=timecode, body=text
    )
    _sync_mentions(comment, text, user)
    audit.record(
        user,
        AuditEvent.Action.COMMENTED,
        comment,
        video=video.pk,
        timecode=timecode,
        reply_to=parent.pk if parent else None,
    )
    at = f" at {timecode_label(timecode)}" if timecode is not None else ""
    short = text[:200] + ("…" if len(text) > 200 else "")
    queue_event(
        "video.commented",
        video=video,
        actor=user,
        text=f"{user.get_username()} commented on #{video.pk}{at}: {short}",
    )
    return comment


@transaction.atomic
def edit_comment(*, user: User, comment: Comment, body: str) -> Comment:
    """The author rewrites their own comment; anyone newly @named is told."""
    if not comment.can_be_edited_by(user):
        raise PermissionDenied("Only its author can edit a comment.")
    text = clean_body(body)
    if text != comment.body:
        comment.body = text
        comment.edited_at = timezone.now()
        comment.save(update_fields=["body", "edited_at"])
        _sync_mentions(comment, text, user)
    return comment


@transaction.atomic
def remove_comment(*, user: User, comment: Comment) -> Comment:
    """Its author, or staff (moderation), removes a comment: the words and the mentions go,
    the row stays so that its replies keep their thread."""
    if not comment.can_be_removed_by(user):
        raise PermissionDenied("Only its author, or staff, can remove a comment.")
    if comment.removed_at is not None:
        return comment
    by_author = comment.author_id == user.pk
    comment.body = ""
    comment.removed_at = timezone.now()
    comment.removed_by = user
    comment.save(update_fields=["body", "removed_at", "removed_by"])
    Mention.objects.filter(comment=comment).delete()  # an unread toast about gone words: none
    audit.record(
        user,
        AuditEvent.Action.COMMENT_REMOVED,
        comment,
        video=comment.video_id,
        by_author=by_author,
    )
    return comment
