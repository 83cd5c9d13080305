"""Team review of a finished video: comments at a moment in it, and each reviewer's verdict."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.common import owner_or_staff
from jobs.models.videos import Video

COMMENT_MAX_LENGTH = 4000


class Comment(models.Model):
    """A comment on a video, at a timecode (seconds) or on the whole video; replies thread."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="comments"
    )
    # A reply belongs to its thread's first comment (one level, as review tools keep it).
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    timecode = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0)], help_text="Seconds into the video"
    )
    body = models.TextField(validators=[MaxLengthValidator(COMMENT_MAX_LENGTH)])
    mentions = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Mention", blank=True, related_name="mentioned_in"
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    # Removed by staff (moderation): the thread keeps its shape, the words are gone.
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["video", "created_at"], name="comment_video_at")]
        constraints = [
            models.CheckConstraint(
                condition=Q(timecode__isnull=True) | Q(timecode__gte=0), name="comment_timecode"
            )
        ]

    def __str__(self) -> str:
        return f"Comment {self.pk} on #{self.video_id}"

    def can_be_edited_by(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        """Only its author edits it (staff moderate by removing, not by rewriting)."""
        return self.author_id is not None and self.author_id == user.pk and not self.removed_at

    def can_be_removed_by(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        return owner_or_staff(self.author_id, user)


class Mention(models.Model):
    """An @name in a comment: that person is told once (a toast, and e-mail where enabled)."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["comment", "user"], name="mention_once")]
        indexes = [
            models.Index(fields=["user"], name="mention_unseen", condition=Q(seen_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"@{self.user_id} in comment {self.comment_id}"


class Review(models.Model):
    """One reviewer's verdict on one video; asked for (needs review) or given."""

    class Verdict(models.TextChoices):
        NEEDS_REVIEW = "needs_review", "Needs review"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews"
    )
    verdict = models.CharField(max_length=20, choices=Verdict, default=Verdict.NEEDS_REVIEW)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now, help_text="When the verdict was last set")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "reviewer"], name="one_verdict_per_reviewer")
        ]
        indexes = [models.Index(fields=["reviewer", "verdict"], name="review_waiting")]

    def __str__(self) -> str:
        return f"{self.reviewer} on #{self.video_id}: {self.get_verdict_display()}"
