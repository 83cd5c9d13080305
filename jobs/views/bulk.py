"""The bulk endpoint (one POST for every action on the selected videos) and the CSV exports."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from jobs import selectors
from jobs.lib.months import month_start, parse_month
from jobs.services import bulk as service
from jobs.services import export
from jobs.views.common import AuthedRequest


def _back(request: AuthedRequest) -> str:
    """The page the bar was on (the table with its filters, a collection, a video)."""
    back = request.POST.get("next", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return reverse("jobs:list")


@require_POST
def bulk(request: AuthedRequest) -> HttpResponseBase:
    try:
        outcome = service.run(
            user=request.user,
            action=request.POST.get("action", ""),
            ids=request.POST.getlist("ids"),
            collection_id=request.POST.get("collection", ""),
            confirmed=request.POST.get("confirmed") == "1",
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_back(request))
    if isinstance(outcome, service.ZipDownload):
        return _attachment(
            StreamingHttpResponse(outcome.chunks, content_type="application/zip"),
            outcome.filename,
            size=outcome.size,
        )
    if isinstance(outcome, service.DeletePlan):
        ctx = {"plan": outcome, "next": _back(request)}
        return render(request, "jobs/bulk_delete.html", ctx)
    if outcome.message:
        (messages.success if outcome.ok else messages.warning)(request, outcome.message)
    return redirect(outcome.redirect or _back(request))


def _attachment(
    response: StreamingHttpResponse, filename: str, size: int | None = None
) -> StreamingHttpResponse:
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    if size is not None:
        response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, no-store"  # a snapshot of one person's view
    return response


@require_GET
def export_table(request: AuthedRequest) -> HttpResponseBase:
    """The jobs table as CSV, under the filters and sort in the query (every page of it)."""
    # As the table view reads them: NUL cannot be searched in PostgreSQL text (a 500).
    params = {k: str(v).replace("\x00", "") for k, v in request.GET.items()}
    filters = selectors.TableFilters.from_query(params)
    rows = export.table_csv(user=request.user, filters=filters)
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    return _attachment(response, export.table_filename())


@require_GET
def export_usage(request: AuthedRequest) -> HttpResponse | StreamingHttpResponse:
    """The usage page's tables for its month (`?month=YYYY-MM`, this month by default)."""
    month = parse_month(request.GET.get("month", "")) or month_start()
    rows = export.usage_csv(viewer=request.user, month=month)
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    return _attachment(response, export.usage_filename(month))
