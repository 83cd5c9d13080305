"""Reads for team review: a video's comment threads and verdicts, whom to ask, my waiting list."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import F, Prefetch, QuerySet

from jobs.models import Comment, Review, Video

MAX_CANDIDATES = 200  # the "ask for a review" checklist stays a list, not a directory


def comment_threads(video: Video) -> list[Comment]:
    """The video's threads: whole-video comments first, then by moment, each with its replies.

    Two queries (threads, then every reply). A removed comment stays only as the head of a
    thread that still has a reply standing; with nothing left to read it drops out.
    """
    replies = Comment.objects.select_related("author").order_by("created_at", "pk")
    heads = (
        Comment.objects.filter(video=video, parent__isnull=True)
        .select_related("author", "removed_by")
        .prefetch_related(Prefetch("replies", queryset=replies))
        .order_by(F("timecode").asc(nulls_first=True), "created_at", "pk")
    )
    threads = []
    for head in heads:
        standing = [r for r in head.replies.all() if r.removed_at is None]
        if head.removed_at is None or standing:
            head.standing_replies = standing  # type: ignore[attr-defined]  # for the template
            threads.append(head)
    return threads


def verdicts(video: Video) -> list[Review]:
    """Every reviewer's verdict on the video (asked for or given), by name."""
    return list(
        Review.objects.filter(video=video)
        .select_related("reviewer", "requested_by")
        .order_by("reviewer__username")
    )


def review_candidates(video: Video, *, exclude: set[int]) -> QuerySet[User]:
    """Team members who could be asked: active people other than the owner and those asked."""
    people = User.objects.filter(is_active=True).exclude(pk__in=exclude)
    if video.owner_id is not None:
        people = people.exclude(pk=video.owner_id)
    return people.order_by("username")[:MAX_CANDIDATES]


def waiting_for(user: User) -> QuerySet[Review]:
    """The videos waiting for `user`'s verdict, the longest-waiting first (index review_waiting)."""
    return (
        Review.objects.filter(reviewer=user, verdict=Review.Verdict.NEEDS_REVIEW)
        .select_related("video", "video__owner", "requested_by")
        .order_by("at", "pk")
    )
