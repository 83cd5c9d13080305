"""Share links: a read-only page of one video or one collection for people outside the team.

The one rule for what a link reaches is `shared_video`: the link's own video, or a video of
its collection, and nothing else. Every request through a link starts by `open_link`, which
refuses an unknown token (404), and a revoked or expired one in words (410).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from jobs.models import AuditEvent, Collection, CollectionItem, ShareLink, Video
from jobs.services.audit import record

EXPIRY_CHOICES = [("1", "1 day"), ("7", "7 days"), ("30", "30 days"), ("never", "Never")]
PASSWORD_MAX = 128
PASSWORD_TRIES = 10  # wrong passwords per link and address …
PASSWORD_WINDOW = 15 * 60  # … in this many seconds, then the form refuses until it passes
SESSION_KEY = "unlocked_shares"  # the link pks this browser gave the right password for
VARIANTS = {"video": "video_file", "thumbnail": "thumbnail_file", "spritesheet": "spritesheet_file"}
MAX_SHOWN = 500  # a collection's share page lists at most this many videos


# --- making and revoking (the owner, or staff) ----------------------------------------------


def _may_share(user: AbstractBaseUser | AnonymousUser, target: Video | Collection) -> None:
    if not target.can_be_managed_by(user):
        what = "video" if isinstance(target, Video) else "collection"
        raise PermissionDenied(f"Only the owner of this {what}, or staff, can share it.")


def create_link(
    *, user: User, target: Video | Collection, expires: str, password: str = ""
) -> ShareLink:
    """A new link to `target`, expiring after `expires` days ("never": it does not)."""
    _may_share(user, target)
    days = dict(EXPIRY_CHOICES)
    if expires not in days:
        raise ValidationError({"expires": "Choose when the link stops working."})
    if len(password) > PASSWORD_MAX:
        raise ValidationError(
            {"password": f"Keep the password to {PASSWORD_MAX} characters or fewer."}
        )
    at = None if expires == "never" else timezone.now() + timedelta(days=int(expires))
    with transaction.atomic():
        link = ShareLink.objects.create(
            video=target if isinstance(target, Video) else None,
            collection=target if isinstance(target, Collection) else None,
            created_by=user,
            expires_at=at,
            password=make_password(password) if password else "",
        )
        record(
            user,
            AuditEvent.Action.SHARED,
            target,
            link=link.pk,
            expires=days[expires],
            password=bool(password),
        )
    return link


def links_for(target: Video | Collection) -> QuerySet[ShareLink]:
    """The links made for `target`, newest first (for its owner's share page)."""
    field = "video" if isinstance(target, Video) else "collection"
    return ShareLink.objects.filter(**{field: target}).order_by("-created_at", "-pk")


def revoke_link(*, user: User, link: ShareLink) -> bool:
    """Stop a link for good. False: it was already revoked (a second click)."""
    target = link_target(link)
    _may_share(user, target)
    with transaction.atomic():
        done = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if done:
            record(user, AuditEvent.Action.SHARE_REVOKED, target, link=link.pk)
    return bool(done)


def link_target(link: ShareLink) -> Video | Collection:
    target = link.video or link.collection
    assert target is not None  # the share_link_one_target constraint
    return target


# --- opening a link (anyone with the token) -------------------------------------------------


Refusal = Literal["", "revoked", "expired"]


@dataclass(frozen=True)
class Opened:
    link: ShareLink
    refusal: Refusal  # "" when it may be used

    @property
    def words(self) -> str:
        if self.refusal == "revoked":
            return "This share link was revoked by the person who made it; it no longer works."
        if self.refusal == "expired":
            when = timezone.localtime(self.link.expires_at)
            return f"This share link expired on {when:%Y-%m-%d at %H:%M %Z}; it no longer works."
        return ""


def open_link(token: str) -> Opened:
    """The link for `token`, or Http404 for a token nobody made."""
    if not token or len(token) > 64:
        raise Http404
    link = ShareLink.objects.select_related("video", "collection").filter(token=token).first()
    if link is None:
        raise Http404
    return Opened(link, refusal_of(link))


def refusal_of(link: ShareLink) -> Refusal:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= timezone.now():
        return "expired"
    return ""


def shared_videos(link: ShareLink) -> list[Video]:
    """What the page shows: the video, or the collection's videos in the order they were added."""
    if link.video is not None:
        return [link.video]
    items = (
        CollectionItem.objects.filter(collection=link.collection)
        .select_related("video")
        .order_by("added_at", "pk")[:MAX_SHOWN]
    )
    return [item.video for item in items]


def shared_video(link: ShareLink, pk: int) -> Video:
    """THE rule of what a link reaches: its video, or one in its collection; else 404."""
    if link.video_id is not None:
        if link.video_id != pk:
            raise Http404
        assert link.video is not None
        return link.video
    assert link.collection is not None
    video = link.collection.videos.filter(pk=pk).first()
    if video is None:
        raise Http404
    return video


def shared_file(link: ShareLink, pk: int, variant: str) -> str:
    """The storage name of one archived file of a shared video; 404 for anything else."""
    field = VARIANTS.get(variant)
    if field is None:
        raise Http404
    video = shared_video(link, pk)
    name = getattr(video, field).name
    if not name or (variant == "video" and not video.playable):
        raise Http404
    return str(name)


# --- the password (hashed; tries counted per link and address; unlocked per session) --------


def is_unlocked(link: ShareLink, session: SessionBase) -> bool:
    return not link.password or link.pk in session.get(SESSION_KEY, [])


def _tries_key(link: ShareLink, address: str) -> str:
    return f"share-password:{link.pk}:{address}"


def try_password(link: ShareLink, password: str, *, address: str, session: SessionBase) -> str:
    """Check a password; "" when right (this session is then unlocked), else why not, in words."""
    key = _tries_key(link, address)
    tries = cache.get(key, 0)
    if tries >= PASSWORD_TRIES:
        return (
            f"Too many wrong passwords from your address; try again in "
            f"{PASSWORD_WINDOW // 60} minutes."
        )
    if password and len(password) <= PASSWORD_MAX and check_password(password, link.password):
        session[SESSION_KEY] = [*session.get(SESSION_KEY, []), link.pk][-50:]
        session.cycle_key()  # a new session id for the unlocked state (no fixation)
        return ""
    if cache.add(key, 1, PASSWORD_WINDOW) is False:
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, PASSWORD_WINDOW)
    return "That is not the password for this link."
