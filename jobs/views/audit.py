"""The audit log: who did what, for staff, with filters."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from jobs.audit_reads import PAGE_SIZE, AuditFilterForm, audit_events
from jobs.lib.paging import BoundedPaginator
from jobs.views.common import AuthedRequest


@require_GET
def audit_log(request: AuthedRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("The audit log is for staff.")
    form = AuditFilterForm(request.GET)
    form.is_valid()  # an invalid filter is shown with its error and not applied
    page = BoundedPaginator(audit_events(form.cleaned_data), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    keep = request.GET.copy()
    keep.pop("page", None)
    ctx = {"form": form, "page": page, "query": keep.urlencode()}
    return render(request, "jobs/audit.html", ctx, status=200 if form.is_valid() else 400)
