"""Videos mirroring the provider's Video object, their batches, history and webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from jobs.models.common import owner_or_staff
from jobs.models.providers import Provider
from jobs.provider.fields import (
    ERROR_CODE_MAX_LENGTH,
    ID_MAX_LENGTH,
    MODEL_MAX_LENGTH,
    SECONDS_MAX_LENGTH,
    SIZE_MAX_LENGTH,
    STATUS_MAX_LENGTH,
)

# The columns a provider's answer fills are as long as the client lets a field be
# (jobs/provider/fields.py): an answer that fits the check fits the row. Ids are opaque: gateways
# such as LiteLLM rewrite them into ~200-character base64 strings.
PROVIDER_ID_LENGTH = ID_MAX_LENGTH
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")


class Batch(models.Model):
    """Several remixes of one source submitted together."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    source = models.ForeignKey("Video", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # The form's key: a double-submitted batch form finds the batch it already made, and each
    # job's own key is uuid5(this key, index), so the jobs are found again too.
    idempotency_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"Batch {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:batch", args=[self.pk])

    def can_be_managed_by(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        return owner_or_staff(self.owner_id, user)


# Columns no page shows: writing only these leaves `updated_at` alone, so a tracker's lease or
# a told notice does not make every open tab re-fetch its rows (jobs/table_version.py).
UNSHOWN_FIELDS = frozenset(
    {"next_poll_at", "last_polled_at", "poll_errors", "notify_pending", "archive_attempts"}
)


class VideoQuerySet(models.QuerySet["Video"]):
    """The lifecycle's states as queries; each mirrors the property of the same name."""

    def update(self, **kwargs: object) -> int:
        """`auto_now` only runs in save(): a bulk UPDATE of anything a page shows moves
        `updated_at` too, so the polls' version key (jobs/table_version.py) sees every change."""
        if not UNSHOWN_FIELDS.issuperset(kwargs):
            kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)

    def active(self) -> VideoQuerySet:
        return self.filter(status__in=Video.ACTIVE).exclude(submission__in=Video.HALTED)

    def archiving(self) -> VideoQuerySet:
        return self.filter(ARCHIVING)

    def not_archiving(self) -> VideoQuerySet:
        return self.exclude(ARCHIVING)

    def due(self, now: datetime) -> VideoQuerySet:
        """Rows the tracker should look at now (served by the partial index `video_due`)."""
        return self.filter(next_poll_at__lte=now).order_by("next_poll_at")

    def counting_spend(self) -> VideoQuerySet:
        """Completed and in-flight jobs cost money; failed or rejected ones do not."""
        return self.exclude(status=Video.Status.FAILED).exclude(
            submission=Video.Submission.REJECTED
        )


class Video(models.Model):
    """A provider video job. Provider-owned fields mirror the Video object; local ones follow."""

    class Status(models.TextChoices):  # the provider's own strings, stored as they come
        QUEUED = "queued", "Queued"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired at the provider"  # gateways: never finished in time

    class Kind(models.TextChoices):  # how the job came from its source, if it has one
        CREATE = "create", "Created"
        REMIX = "remix", "Remix"
        EDIT = "edit", "Edit"
        EXTENSION = "extension", "Extension"

    class Submission(models.TextChoices):
        PENDING = "pending", "Waiting to submit"
        SENDING = "sending", "Sending"  # the POST is (or was) on its way: never resend blindly
        UNKNOWN = "unknown", "Checking submission"  # sent, but the answer was lost
        UNCONFIRMED = "unconfirmed", "Could not confirm the submission"  # the user decides
        WITHDRAWN = "withdrawn", "Never sent: cancelled here"
        SUBMITTED = "submitted", "Submitted"
        REJECTED = "rejected", "Rejected"
        IMPORTED = "imported", "Imported"

    class Assets(models.TextChoices):
        PENDING = "pending", "Pending"
        ARCHIVED = "archived", "Archived"
        EXPIRED = "expired", "Expired before archiving"
        BROKEN = "broken", "Could not be archived"  # verification failed every time
        NONE = "none", "No assets"  # failed or rejected jobs never have any

    class ReviewState(models.TextChoices):  # the team's verdicts together (services.review)
        NONE = "", "Not in review"
        NEEDS_REVIEW = "needs_review", "Needs review"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    ACTIVE = (Status.QUEUED, Status.IN_PROGRESS)
    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.EXPIRED)
    # Not at the provider yet, as far as we know; the worker sends it or looks it up.
    WAITING = (Submission.PENDING, Submission.SENDING, Submission.UNKNOWN)
    # Stopped here: refused, or waiting for the user to decide after an unconfirmed send.
    HALTED = (Submission.REJECTED, Submission.UNCONFIRMED)

    # --- provider-owned: the Video object ---------------------------------------------------
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="videos")
    # NULL, not "", until submitted: the unique (provider, video_id) must ignore unsent rows.
    video_id = models.CharField(  # noqa: DJ001
        "provider video id", max_length=PROVIDER_ID_LENGTH, null=True, blank=True
    )
    model = models.CharField(max_length=MODEL_MAX_LENGTH)
    status = models.CharField(max_length=STATUS_MAX_LENGTH, choices=Status, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(null=True, blank=True, help_text="Provider's created_at")
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    prompt = models.TextField()
    size = models.CharField(max_length=SIZE_MAX_LENGTH)
    seconds = models.CharField(max_length=SECONDS_MAX_LENGTH)
    remixed_from_video_id = models.CharField(max_length=PROVIDER_ID_LENGTH, blank=True)
    error_code = models.CharField(max_length=ERROR_CODE_MAX_LENGTH, blank=True)
    error_message = models.TextField(blank=True)
    # Where the finished file is, when the provider's object names a URL (metadata.url, url,
    # unsigned_urls) instead of, or beside, GET /videos/{id}/content. Often signed and short-lived.
    content_url = models.TextField(blank=True)

    # --- local concerns ---------------------------------------------------------------------
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="videos",
        help_text="Who submitted it (empty for imported jobs).",
    )
    source = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="remixes",
        help_text="The local video this remixes (lineage survives in remixed_from_video_id).",
    )
    kind = models.CharField(
        max_length=10,
        choices=Kind,
        default=Kind.CREATE,
        help_text="Remix, edit or extension of `source` (or of remixed_from_video_id).",
    )
    # An extension's request: the seconds to add to the source (the job's `seconds` is the
    # stitched total the provider reports).
    added_seconds = models.CharField(max_length=SECONDS_MAX_LENGTH, blank=True)
    batch = models.ForeignKey(
        Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="videos"
    )
    retry_of = models.ForeignKey(  # "retry" makes a new job with the same inputs
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        help_text="The failed job this one retries.",
    )
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    submission = models.CharField(max_length=16, choices=Submission, default=Submission.PENDING)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the create/remix POST was last sent"
    )
    input_reference = models.FileField(upload_to="references/%Y/%m/", blank=True, max_length=300)
    cost_estimate = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    requested_at = models.DateTimeField(default=timezone.now, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    # When the tracker should next look at this row (submit, refresh or archive); NULL = settled.
    # Claiming moves it into the future (a lease), so a crashed worker's job comes back by itself.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    poll_errors = models.PositiveSmallIntegerField(default=0, help_text="Consecutive failures")
    last_error = models.TextField(blank=True, help_text="Last transient problem, for the row")
    asset_state = models.CharField(max_length=10, choices=Assets, default=Assets.PENDING)
    video_file = models.FileField(upload_to="archive/", blank=True, max_length=300)
    thumbnail_file = models.FileField(upload_to="archive/", blank=True, max_length=300)
    spritesheet_file = models.FileField(upload_to="archive/", blank=True, max_length=300)
    # The spritesheet's layout, {"columns", "rows", "frames"}, when known (always for previews
    # made here from the MP4; the player's scrubbing guesses it otherwise).
    sprite_grid = models.JSONField(null=True, blank=True)
    previews_made_here = models.BooleanField(
        default=False, help_text="The poster and spritesheet were made here from the MP4"
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    archive_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Downloads that failed verification or broke off, in a row"
    )
    # Derived from the Review rows on every verdict, kept here so the table filters by an index.
    review_state = models.CharField(
        max_length=20, choices=ReviewState, default=ReviewState.NONE, blank=True
    )
    notify_pending = models.BooleanField(
        default=False, help_text="The owner has not yet been told that it finished"
    )

    objects = VideoQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # One retry per failed job: a second click finds the first retry ("Retried as #N").
            models.UniqueConstraint(
                fields=["retry_of"], condition=Q(retry_of__isnull=False), name="video_retried_once"
            ),
            models.UniqueConstraint(
                fields=["provider", "video_id"],
                condition=Q(video_id__isnull=False),
                name="video_unique_provider_id",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="video_progress_percent"),
        ]
        indexes = [
            # selectors.videos_for_table(): everybody's videos, newest first
            models.Index(fields=["-requested_at", "-id"], name="video_recent"),
            # videos_for_table(mine) and the usage page
            models.Index(fields=["owner", "-requested_at"], name="video_owner_recent"),
            # videos_for_table(status=...), its "status" sorts (read backwards for "-status") and
            # "is anything active?" on every poll
            models.Index(fields=["status", "-requested_at", "-id"], name="video_status_recent"),
            # videos_for_table(sort="model" / "-model") and the filter by model
            models.Index(fields=["model", "-requested_at", "-id"], name="video_model_recent"),
            # On PostgreSQL the search box's prompt__icontains is served by a trigram index
            # (video_prompt_trgm, made by migration 0009 there only: SQLite has no pg_trgm).
            # notify.take_notifications() on every page and poll: my running jobs, my unread news
            models.Index(fields=["owner", "status"], name="video_owner_status"),
            models.Index(fields=["owner", "notify_pending"], name="video_owner_notify"),
            # videos_for_table(review=...)
            models.Index(fields=["review_state", "-requested_at"], name="video_review_recent"),
            # VideoQuerySet.due() for the tracker: rows with work left, so the index stays small
            models.Index(
                fields=["next_poll_at"], name="video_due", condition=Q(next_poll_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return self.video_id or f"(unsent #{self.pk})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        """Still moving: waiting to submit, queued or rendering."""
        return self.submission not in self.HALTED and self.status in self.ACTIVE

    @property
    def is_final(self) -> bool:
        return not self.is_active

    @property
    def is_archiving(self) -> bool:
        """Completed at the provider, files not yet copied here."""
        return self.status == self.Status.COMPLETED and self.asset_state == self.Assets.PENDING

    @property
    def will_change(self) -> bool:
        """Something about this row will still change by itself: pages keep polling for it."""
        return self.is_active or self.is_archiving

    @property
    def display_status(self) -> str:
        if self.submission in (*self.WAITING, self.Submission.UNCONFIRMED):
            return self.get_submission_display()
        if self.submission == self.Submission.REJECTED:
            return "Rejected"
        return self.get_status_display()

    @property
    def status_key(self) -> str:
        """A CSS-friendly state name for the badge."""
        if self.submission in self.WAITING:
            return "waiting"
        if self.submission == self.Submission.UNCONFIRMED:
            return "unconfirmed"
        if self.submission == self.Submission.REJECTED:
            return "failed"
        return self.status

    def can_be_managed_by(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        """Retry, delete and the like: the person who submitted it, or staff."""
        return owner_or_staff(self.owner_id, user)

    @property
    def is_derived(self) -> bool:
        """Derived from another video (remix, edit or extension)."""
        return self.kind != self.Kind.CREATE or bool(self.remixed_from_video_id or self.source_id)

    @property
    def playable(self) -> bool:
        return self.asset_state == self.Assets.ARCHIVED and bool(self.video_file)


# Video.is_archiving as a condition: completed at the provider, files not yet copied here.
ARCHIVING = Q(status=Video.Status.COMPLETED, asset_state=Video.Assets.PENDING)


class StatusChange(models.Model):
    """One observed transition, for audit."""

    class Via(models.TextChoices):
        SUBMIT = "submit"
        POLL = "poll"
        WEBHOOK = "webhook"
        IMPORT = "import"
        LOCAL = "local"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    progress = models.PositiveSmallIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=10, choices=Via)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["video", "at"], name="history_video_at")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class WebhookDelivery(models.Model):
    """A webhook-id seen from a provider: replays are acknowledged and ignored."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE)
    webhook_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    video_id = models.CharField(max_length=PROVIDER_ID_LENGTH, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["provider", "webhook_id"], name="webhook_once")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"


# --- budgets ---------------------------------------------------------------------
