"""Spend per user, team and month, with the budgets that apply."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from jobs import selectors
from jobs.lib.months import month_start, next_month, parse_month
from jobs.views.common import AuthedRequest


@require_GET
def usage(request: AuthedRequest) -> HttpResponse:
    month = parse_month(request.GET.get("month", "")) or month_start()
    ctx = {
        "usage": selectors.usage(viewer=request.user, month=month),
        "budgets": (
            selectors.all_budget_lines()
            if request.user.is_staff
            else selectors.budget_lines(request.user)
        ),
        "previous": (month - timedelta(days=1)).strftime("%Y-%m"),
        "next": next_month(month).strftime("%Y-%m"),
    }
    return render(request, "jobs/usage.html", ctx)
