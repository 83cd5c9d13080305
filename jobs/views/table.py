"""The jobs list (`/`, as a table or a gallery) with its polled partial, the view switch, and
the notices partial every page polls."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from jobs import selectors
from jobs.models import Profile, Video
from jobs.services import preferences
from jobs.views.common import AuthedRequest, revalidate


@require_GET
def video_list(request: AuthedRequest) -> HttpResponse:
    # NUL cannot be stored or searched in PostgreSQL text (it would be a 500): drop it.
    params = {k: str(v).replace("\x00", "") for k, v in request.GET.items()}
    filters = selectors.TableFilters.from_query(params)
    page = Paginator(
        selectors.videos_for_table(user=request.user, filters=filters), settings.TABLE_PAGE_SIZE
    ).get_page(params.get("page"))
    for video in page.object_list:
        video.cost_charged = selectors.charged(video)  # type: ignore[attr-defined]  # for cards
    # The poll names the view it shows, so a tick costs no profile query.
    view = params.get("view", "")
    if view not in Profile.View.values:
        view = selectors.table_view(request.user)
    query = {k: v for k, v in params.items() if k not in ("page", "view") and v}
    ctx = {
        "page": page,
        "videos": page.object_list,
        "view": view,
        # The partial polls only while a row will still change; a final table drops data-poll.
        "polling": any(video.will_change for video in page.object_list),
        "filters": filters,
        "query": urlencode(query),
        "headers": sort_headers(filters.sort, query),
        "statuses": Video.Status.choices,
        "sorts": list(selectors.SORT_LABELS.items()),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        "table_url": f"{reverse('jobs:list')}?{urlencode({**query, 'page': str(page.number)})}"
        + f"&view={view}",
    }
    if request.htmx and not request.htmx.history_restore_request:
        return revalidate(render(request, "jobs/video_list.html#video-table", ctx))
    ctx["models"] = selectors.models_in_use()  # the filter menu is not part of the partial
    ctx["review_states"] = [c for c in Video.ReviewState.choices if c[0]]
    return revalidate(render(request, "jobs/video_list.html", ctx))


def sort_headers(sort: str, query: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per sortable column: the link that sorts by it (or reverses it) and its aria-sort."""
    headers = {}
    for column, (first, reverse_key) in selectors.SORT_COLUMNS.items():
        current = sort in (first, reverse_key)
        target = reverse_key if sort == first else first
        direction = "descending" if sort in selectors.DESCENDING else "ascending"
        headers[column] = {
            "href": "?" + urlencode({**query, "sort": target}),
            "aria_sort": direction if current else "none",
        }
    return headers


@require_POST
def set_view(request: AuthedRequest) -> HttpResponse:
    """The table/gallery switch beside the table, remembered for the user (not the browser)."""
    try:
        preferences.set_view(request.user, request.POST.get("view", ""))
    except ValidationError as exc:
        return HttpResponseBadRequest(" ".join(exc.messages))
    back = request.POST.get("next", "")
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("jobs:list")
    return redirect(back)


@require_GET
def notifications(request: AuthedRequest) -> HttpResponse:
    """base.html's notices partial: toasts for my finished jobs and my running count.

    Polled by static/js/notify.js only while I have running jobs and the tab is visible.
    """
    return render(request, "base.html#notices")
