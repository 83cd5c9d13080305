"""Review state: the owner asks team members for a review, each gives one verdict, and the
video's review_state is recomputed from those verdicts in one place (review_state_of)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from jobs.models import AuditEvent, Review, Video
from jobs.outbound import queue_event
from jobs.services import audit

GIVEN = (Review.Verdict.APPROVED, Review.Verdict.CHANGES_REQUESTED)
MAX_REVIEWERS = 50  # per request: a form cannot ask the whole company at once


def review_state_of(verdicts: Iterable[str]) -> str:
    """The team's verdict from every reviewer's (the one rule, stored as Video.review_state).

    - nobody asked and nobody reviewed: "" (not in review);
    - any reviewer requested changes: changes requested (one "no" holds the video back,
      whatever the others said, until that reviewer changes their verdict);
    - else, anyone still to answer: needs review;
    - else (everyone asked has approved): approved.
    """
    found = set(verdicts)
    if not found:
        return Video.ReviewState.NONE
    if Review.Verdict.CHANGES_REQUESTED in found:
        return Video.ReviewState.CHANGES_REQUESTED
    if Review.Verdict.NEEDS_REVIEW in found:
        return Video.ReviewState.NEEDS_REVIEW
    return Video.ReviewState.APPROVED


def _recompute(video: Video) -> str:
    """Store the team's verdict (on the row and on `video`); the caller holds the row's lock."""
    state = review_state_of(Review.objects.filter(video=video).values_list("verdict", flat=True))
    # update(), not save(): the tracker owns the rest of the row and may be writing it now.
    Video.objects.filter(pk=video.pk).update(review_state=state)
    video.review_state = state
    return state


def _lock(video: Video) -> str:
    """Lock the video's row (two verdicts at once must not both compute from stale rows);
    returns its review state as stored."""
    return Video.objects.select_for_update().values_list("review_state", flat=True).get(pk=video.pk)


def _reviewable(video: Video) -> str:
    if video.status != Video.Status.COMPLETED:
        return "Only a completed video can be reviewed."
    return ""


def request_refusal(video: Video, user: AbstractBaseUser | AnonymousUser) -> str:
    """Why `user` may not ask for a review of `video` ("" when they may)."""
    if not video.can_be_managed_by(user):
        return "Only the person who submitted it, or staff, can ask for a review."
    return _reviewable(video)


def verdict_refusal(video: Video, user: AbstractBaseUser | AnonymousUser) -> str:
    """Why `user` may not give a verdict on `video` ("" when they may).

    Any team member may review, asked or not, except its owner: nobody approves their own work.
    """
    if not user.is_authenticated:
        return "Log in to review."
    if video.owner_id is not None and video.owner_id == user.pk:
        return "You made this video, so your team reviews it, not you."
    return _reviewable(video)


@transaction.atomic
def request_review(*, user: User, video: Video, reviewers: Iterable[User]) -> list[Review]:
    """Ask each of `reviewers` for a verdict; returns the new requests (someone already asked,
    or who has already given a verdict, keeps it: asking again never erases an answer)."""
    refusal = request_refusal(video, user)
    if refusal:
        raise PermissionDenied(refusal)
    people = {p.pk: p for p in reviewers if p.is_active and p.pk != video.owner_id}
    if not people:
        raise ValidationError("Pick at least one team member (not the video's owner) to ask.")
    if len(people) > MAX_REVIEWERS:
        raise ValidationError(f"Ask at most {MAX_REVIEWERS} people at a time.")
    _lock(video)
    asked = set(
        Review.objects.filter(video=video, reviewer__in=people).values_list("reviewer", flat=True)
    )
    now = timezone.now()
    new = Review.objects.bulk_create(
        Review(video=video, reviewer=p, requested_by=user, at=now)
        for pk, p in sorted(people.items())
        if pk not in asked
    )
    if new:
        audit.record(
            user,
            AuditEvent.Action.REVIEW_REQUESTED,
            video,
            reviewers=[r.reviewer.get_username() for r in new],
        )
        _recompute(video)
    return new


@transaction.atomic
def set_verdict(*, user: User, video: Video, verdict: str) -> Review:
    """Record `user`'s verdict (approved or changes requested), replacing their earlier one."""
    if verdict not in GIVEN:
        raise ValidationError("Choose Approve or Request changes.")
    refusal = verdict_refusal(video, user)
    if refusal:
        raise PermissionDenied(refusal)
    before = _lock(video)
    review, _ = Review.objects.update_or_create(
        video=video, reviewer=user, defaults={"verdict": verdict, "at": timezone.now()}
    )
    action = (
        AuditEvent.Action.APPROVED
        if verdict == Review.Verdict.APPROVED
        else AuditEvent.Action.CHANGES_REQUESTED
    )
    audit.record(user, action, video)
    state = _recompute(video)
    # Outside tools hear when the video becomes approved (the team's verdict), not each vote.
    if state == Video.ReviewState.APPROVED and before != state:
        queue_event("video.approved", video=video, actor=user)
    return review
