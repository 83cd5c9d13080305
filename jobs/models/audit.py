"""Who did what (the audit log), and the team's outbound notifications with their deliveries."""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One action by a person (or the system), kept when its target is gone."""

    class Action(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        RETRIED = "retried", "Retried"
        CANCELLED = "cancelled", "Cancelled"
        DELETED = "deleted", "Deleted"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Requested changes"
        REVIEW_REQUESTED = "review_requested", "Asked for a review"
        COMMENTED = "commented", "Commented"
        COMMENT_REMOVED = "comment_removed", "Removed a comment"
        SHARED = "shared", "Shared"
        SHARE_REVOKED = "share_revoked", "Revoked a share link"
        BUDGET_CHANGED = "budget_changed", "Changed a budget"
        PROVIDER_CHANGED = "provider_changed", "Changed a provider"

    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    action = models.CharField(max_length=20, choices=Action)
    # The target as it was named then: a deleted video's row is gone, its entry stays.
    target_type = models.CharField(max_length=30)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["-at"], name="audit_recent"),
            models.Index(fields=["action", "-at"], name="audit_action_recent"),
            models.Index(fields=["actor", "-at"], name="audit_actor_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.actor or 'system'} {self.get_action_display().lower()} {self.target_repr}"


def new_signing_secret() -> str:
    # Standard base64, as Standard Webhooks specifies: url-safe "-" and "_" would be dropped
    # by some receivers' decoders (Python's b64decode among them) and kept by others.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class NotificationTarget(models.Model):
    """Where a team's events go: a Slack-compatible incoming webhook or a signed generic one."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack-compatible incoming webhook"
        WEBHOOK = "webhook", "Generic webhook (Standard Webhooks signature)"

    EVENTS = ("video.completed", "video.failed", "video.approved", "video.commented")

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="notification_targets")
    kind = models.CharField(max_length=10, choices=Kind)
    url = models.URLField(max_length=500)
    # The generic webhook's signing secret (ours, shown to the receiving team).
    secret = models.CharField(max_length=100, default=new_signing_secret, editable=False)
    events = models.JSONField(default=list, help_text="Empty: every event")
    allow_private = models.BooleanField(
        default=False,
        help_text="Allow a loopback, private or link-local target (staff only, explicitly).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "pk"]

    def __str__(self) -> str:
        return f"{self.team}: {self.get_kind_display()}"


class OutboundDelivery(models.Model):
    """One event to one target: tried with back-off until sent or given up, each try recorded
    as an OutboundAttempt (the last one's answer is kept here too, for the list)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENT = "sent", "Sent"
        FAILED = "failed", "Gave up"

    target = models.ForeignKey(
        NotificationTarget, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    message_id = models.CharField(max_length=64, unique=True)  # webhook-id: receivers dedupe
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "outbound deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outbound_due",
                condition=models.Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.target}"


class OutboundAttempt(models.Model):
    """One try of a delivery over the wire: when, how long, and what the target answered."""

    delivery = models.ForeignKey(OutboundDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveSmallIntegerField()  # 1 for the first try since created or reset
    at = models.DateTimeField(default=timezone.now)
    took_ms = models.PositiveIntegerField(default=0)
    sent = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(null=True, blank=True)  # None: no HTTP answer
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"try {self.number} of {self.delivery}"
