"""Reads for the audit log page: the filters, and the entries they pick."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs.models import AuditEvent

PAGE_SIZE = 50
SEARCH_MAX = 200


class AuditFilterForm(forms.Form):
    actor = forms.CharField(
        required=False, max_length=150, label="Who", help_text="A username, or “system”."
    )
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditEvent.Action.choices], label="Did"
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX,
        label="Target",
        help_text="Part of its name, or its number.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data


def _day_start(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_events(filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """The entries matching the (valid) filters, newest first; each filter uses an index
    (audit_recent, audit_action_recent, audit_actor_recent) or narrows what one found."""
    qs = AuditEvent.objects.select_related("actor").order_by("-at", "-pk")
    actor = (filters.get("actor") or "").strip()
    if actor.lower() == "system":
        qs = qs.filter(actor__isnull=True)
    elif actor:
        qs = qs.filter(actor__username__iexact=actor)
    if filters.get("action"):
        qs = qs.filter(action=filters["action"])
    if filters.get("since"):
        qs = qs.filter(at__gte=_day_start(filters["since"]))
    if filters.get("until"):  # the whole of that day
        qs = qs.filter(at__lt=_day_start(filters["until"] + timedelta(days=1)))
    if q := (filters.get("q") or "").strip():
        match = Q(target_repr__icontains=q) | Q(target_type__iexact=q)
        if q.lstrip("#").isdigit():
            match |= Q(target_id=q.lstrip("#"))
        qs = qs.filter(match)
    return qs
