"""Monthly budgets per user and per team, checked inside the transaction that records jobs."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from jobs import selectors
from jobs.lib.months import month_start
from jobs.models import Budget


class BudgetExceeded(ValidationError):
    """A submit that would take a user or team over its monthly budget."""


def check_budget(*, user: User, cost: Decimal, what: str) -> None:
    """Refuse a submit that would exceed a monthly budget of the user or one of their teams.

    Must run inside the transaction that inserts the job(s). The budget rows are locked first
    (SELECT … FOR UPDATE, in pk order so two submitters never deadlock) and only then is the
    month summed: a second submitter waits for the first to commit and then sees its job in
    the sum. On SQLite the IMMEDIATE transaction mode already serialises writers.
    """
    if not user.is_authenticated or cost <= 0:
        return
    assert transaction.get_connection().in_atomic_block, "check_budget needs a transaction"
    budgets = list(
        Budget.objects.select_for_update()
        .filter(Q(user=user) | Q(group__in=user.groups.all()))
        .order_by("pk")
    )
    since = month_start()
    for budget in budgets:
        if budget.group_id is not None:
            spent = selectors.spent(since=since, group_id=budget.group_id)
        else:
            spent = selectors.spent(since=since, user=user)
        if spent + cost <= budget.monthly_limit:
            continue
        left = max(budget.monthly_limit - spent, Decimal("0"))
        if budget.group is not None:  # one query, only on the way to a refusal
            whose = f"your team “{budget.group.name}” has ${left:.2f} left of its"
        else:
            whose = f"you have ${left:.2f} left of your"
        raise BudgetExceeded(
            f"This {what} costs ${cost:.2f}; {whose} ${budget.monthly_limit:.2f} monthly budget.",
            code="budget",
        )
