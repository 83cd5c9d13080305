"""The jobs table (`/`) with its polled partial, and the notices partial every page polls."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from jobs import selectors
from jobs.models import Video
from jobs.views.common import AuthedRequest, revalidate


@require_GET
def video_list(request: AuthedRequest) -> HttpResponse:
    # NUL cannot be stored or searched in PostgreSQL text (it would be a 500): drop it.
    params = {k: str(v).replace("\x00", "") for k, v in request.GET.items()}
    filters = selectors.TableFilters.from_query(params)
    page = Paginator(
        selectors.videos_for_table(user=request.user, filters=filters), settings.TABLE_PAGE_SIZE
    ).get_page(params.get("page"))
    query = {k: v for k, v in params.items() if k != "page" and v}
    ctx = {
        "page": page,
        "videos": page.object_list,
        # The partial polls only while a row will still change; a final table drops data-poll.
        "polling": any(video.will_change for video in page.object_list),
        "filters": filters,
        "query": urlencode(query),
        "statuses": Video.Status.choices,
        "sorts": list(selectors.SORTS),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        "table_url": f"{reverse('jobs:list')}?{urlencode({**query, 'page': str(page.number)})}",
    }
    if request.htmx:
        return revalidate(render(request, "jobs/video_list.html#video-table", ctx))
    ctx["models"] = selectors.models_in_use()  # the filter menu is not part of the partial
    return revalidate(render(request, "jobs/video_list.html", ctx))


@require_GET
def notifications(request: AuthedRequest) -> HttpResponse:
    """base.html's notices partial: toasts for my finished jobs and my running count.

    Polled by static/js/notify.js only while I have running jobs and the tab is visible.
    """
    return render(request, "base.html#notices")
