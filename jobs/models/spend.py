"""Money: what each job was charged (a record deletion does not touch), and monthly budgets."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Budget(models.Model):
    """A monthly spending limit for one user or one team (a Django Group), in dollars.

    Submitting locks the rows that apply (select_for_update) before summing the month's spend,
    so two concurrent submits cannot both spend the last dollar.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="budget",
    )
    group = models.OneToOneField(
        Group,
        verbose_name="team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="budget",
    )
    monthly_limit = models.DecimalField(
        "monthly limit ($)",
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Estimated cost of completed and running jobs, per month.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="budget_user_xor_team",
                violation_error_message="A budget is for either one user or one team.",
            )
        ]

    def __str__(self) -> str:
        who = f"team {self.group}" if self.group_id else str(self.user)
        return f"{who}: ${self.monthly_limit}/month"


class Charge(models.Model):
    """What one job cost, kept when the video is deleted: usage and budgets add these up.

    Written when the job is recorded (the estimate), set to the provider's own figure where it
    reports one, and to zero when the job fails or is cancelled before it ran.
    """

    class Basis(models.TextChoices):
        ESTIMATE = "estimate", "Estimated from the price table"
        PROVIDER = "provider", "Reported by the provider"
        NONE = "none", "Not charged (failed or cancelled)"

    video = models.OneToOneField(
        "jobs.Video", on_delete=models.SET_NULL, null=True, blank=True, related_name="charge"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="charges",
    )
    amount = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    basis = models.CharField(max_length=10, choices=Basis, default=Basis.ESTIMATE)
    at = models.DateTimeField(default=timezone.now, help_text="When the job was recorded")
    # What was bought, so the record still says so after the video is gone.
    provider_name = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    size = models.CharField(max_length=20, blank=True)
    seconds = models.CharField(max_length=10, blank=True)
    prompt = models.CharField(max_length=200, blank=True, help_text="The first 200 characters")

    class Meta:
        indexes = [
            # selectors.spent() and usage(): a user's or a team's charges in a month
            models.Index(fields=["owner", "at"], name="charge_owner_at"),
            # usage(): everybody's charges in a month and in each of the last twelve, read from
            # the index alone (it holds the basis and the amount too)
            models.Index(fields=["at", "basis", "amount"], name="charge_at_amount"),
        ]

    def __str__(self) -> str:
        return f"${self.amount} ({self.get_basis_display()})"
