"""Money: monthly budgets per user or team."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


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
