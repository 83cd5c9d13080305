"""The jobs list (`/`, as a table or a gallery) with its polled partial, the view switch, and
the notices partial every page polls."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from jobs import selectors, table_version
from jobs.lib.paging import BoundedPaginator
from jobs.models import Profile, Video
from jobs.notify import Notices, take_notifications
from jobs.services import preferences
from jobs.views.common import AuthedRequest, revalidate
from jobs.views.polls import (
    changed_rows,
    changes_only,
    conditional_poll,
    is_poll,
    notices_oob,
    poll_version,
)


def _params(request: AuthedRequest) -> dict[str, str]:
    # NUL cannot be stored or searched in PostgreSQL text (it would be a 500): drop it.
    return {k: str(v).replace("\x00", "") for k, v in request.GET.items()}


def _view(request: AuthedRequest, params: dict[str, str]) -> str:
    # The poll names the view it shows, so a tick costs no profile query.
    view = params.get("view", "")
    if view in Profile.View.values:
        return view
    if not hasattr(request, "_table_view"):  # read once, though the ETag needs it first
        request._table_view = selectors.table_view(request.user)  # type: ignore[attr-defined]
    return str(request._table_view)  # type: ignore[attr-defined]


def _page_number(params: dict[str, str]) -> int:
    """The page the poll asks for (its URL names the page it rendered), as Paginator reads it."""
    raw = params.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() and len(raw) < 10 else 1


def _version(request: AuthedRequest) -> table_version.PageVersion:
    params = _params(request)
    filters = selectors.TableFilters.from_query(params)
    return _page_version(request, params, filters, _view(request, params))


def _page_version(
    request: AuthedRequest, params: dict[str, str], filters: selectors.TableFilters, view: str
) -> table_version.PageVersion:
    return table_version.page_version(
        user=request.user,
        filters=filters,
        view=view,
        number=_page_number(params),
        size=settings.TABLE_PAGE_SIZE,
    )


@require_GET
@conditional_poll(_version)
def video_list(request: AuthedRequest) -> HttpResponse:
    """The list, or its polled partial: unchanged ticks end in conditional_poll's 304; a tick
    with the same rows gets only the changed ones, any other the whole partial."""
    params = _params(request)
    filters = selectors.TableFilters.from_query(params)
    view = _view(request, params)
    version = poll_version(request, lambda: _page_version(request, params, filters, view))
    if is_poll(request):
        changed = version.changed_since(request.headers.get("If-None-Match", ""))
        if changed is not None:
            return _changes(request, version, view, changed)
    ctx = _table_context(request, params, filters, view)
    ctx["version"] = version.key
    if is_poll(request):
        if notices := _known_notices(version):
            ctx["notices"] = notices
        response = render(request, "jobs/video_list.html#video-table", ctx)
        response["ETag"] = version.key
        return revalidate(response)
    # The filter menu is not part of the partial.
    ctx["models"] = selectors.models_in_use(filters.model)
    ctx["review_states"] = [c for c in Video.ReviewState.choices if c[0]]
    return revalidate(render(request, "jobs/video_list.html", ctx))


def _known_notices(version: table_version.PageVersion) -> Notices | None:
    """My notices as the key read them, when no news waits (saves take_notifications' query)."""
    if version.mine is None or version.mine.pending:
        return None  # the context processor takes them (and marks them told)
    return Notices(version.mine.running, [])


def _changes(
    request: AuthedRequest,
    version: table_version.PageVersion,
    view: str,
    pks: list[int],
) -> HttpResponse:
    """Only the rows that changed, each swapped out of band into its place, and my notices."""

    def fetch(missing: list[int]) -> list[Video]:
        videos = list(table_version.changed(missing))
        for video in videos:
            video.cost_charged = selectors.charged(video)  # type: ignore[attr-defined]  # cards
        return videos

    body = changed_rows(request, request.user, view, version, pks, fetch)
    notices = _known_notices(version) or take_notifications(user=request.user, mentions=False)
    response = HttpResponse(body + notices_oob(notices))
    response["ETag"] = version.key
    return changes_only(response)


def _table_context(
    request: AuthedRequest, params: dict[str, str], filters: selectors.TableFilters, view: str
) -> dict[str, Any]:
    page = BoundedPaginator(  # counts at most 10,000 rows (1,000 matches): no page grows past it
        selectors.videos_for_table(user=request.user, filters=filters),
        settings.TABLE_PAGE_SIZE,
        count_limit=selectors.count_limit(filters),
    ).get_page(params.get("page"))
    for video in page.object_list:
        video.cost_charged = selectors.charged(video)  # for cards
    query = {k: v for k, v in params.items() if k not in ("page", "view") and v}
    return {
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
