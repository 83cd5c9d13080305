"""What a team's outside tools hear: one OutboundDelivery row per event and interested target.

Only rows are written here, inside the caller's transaction (an action that rolls back queues
nothing); the HTTP is done later by `manage.py deliver_notifications` (jobs.services.outbound),
so neither the tracker nor a web request ever waits on someone else's server.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from jobs.models import NotificationTarget, OutboundDelivery, Video

PROMPT_CHARS = 500  # enough to recognise the video; a payload is not an archive of the prompt
TEXT_CHARS = 1000


def _default_text(event: str, video: Video, who: str) -> str:
    short = video.prompt[:80] + ("…" if len(video.prompt) > 80 else "")
    verb = {
        "video.completed": "completed",
        "video.failed": "failed",
        "video.approved": f"was approved by {who}",
        "video.commented": f"has a new comment by {who}",
    }[event]
    return f"“{short}” {verb}."


def queue_event(
    event: str,
    *,
    video: Video,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    text: str = "",
) -> int:
    """Queue `event` about `video` for every enabled target of its owner's teams that wants it.

    Returns how many deliveries were queued (0 when no team listens: the common case).
    """
    if event not in NotificationTarget.EVENTS:
        raise ValueError(f"unknown outbound event {event!r}")
    if video.owner_id is None:
        return 0
    targets = [
        t
        for t in NotificationTarget.objects.filter(
            team__user=video.owner_id, enabled=True
        ).distinct()
        if not t.events or event in t.events
    ]
    if not targets:
        return 0
    person = actor if actor is not None and actor.is_authenticated else None
    who = person.get_username() if person is not None else ""
    now = timezone.now()
    url = settings.SITE_URL + video.get_absolute_url()
    sentence = (text or _default_text(event, video, who or "someone"))[:TEXT_CHARS]
    data = {
        "video": {
            "id": video.pk,
            "url": url,
            "prompt": video.prompt[:PROMPT_CHARS],
            "status": video.status,
            "review_state": video.review_state,
        },
        "actor": who or None,
        "text": sentence,
    }
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    OutboundDelivery.objects.bulk_create(
        OutboundDelivery(
            target=target,
            event=event,
            message_id="msg_" + secrets.token_urlsafe(18),
            payload=payload,
            next_attempt_at=now,
        )
        for target in targets
    )
    return len(targets)


def queue_final(video: Video) -> int:
    """A job reached its final state (lifecycle._finish): completed and failed are events."""
    if video.status not in (Video.Status.COMPLETED, Video.Status.FAILED):
        return 0  # cancelled or expired: somebody here chose it, or nothing was made
    return queue_event(f"video.{video.status}", video=video)
