"""Thin views: request → service or selector → template."""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from jobs import selectors, services
from jobs.forms import RemixForm
from jobs.models import Provider, Video

log = logging.getLogger(__name__)


@require_GET
def video_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.TableFilters.from_query(request.GET.dict())
    page = Paginator(
        selectors.videos_for_table(user=request.user, filters=filters), settings.TABLE_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    polling = any(video.is_active for video in page.object_list)
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    ctx = {
        "page": page,
        "videos": page.object_list,
        "polling": polling,
        "filters": filters,
        "query": urlencode(query),
        "statuses": Video.Status.choices,
        "sorts": list(selectors.SORTS),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        "table_url": f"{reverse('jobs:list')}?{urlencode({**query, 'page': page.number})}",
    }
    notices = services.take_notifications(user=request.user)
    ctx.update(notices=notices.items, running=notices.running)
    if not request.htmx:
        ctx["models"] = selectors.models_in_use()  # the filter menu is not part of the partial
        return _revalidate(render(request, "jobs/video_list.html", ctx))
    response = render(request, "jobs/video_list.html#video-table", ctx)
    _revalidate(response)
    if not polling:
        response.status_code = HTMX_STOP_POLLING  # htmx swaps this last table, then stops
    return response


def _revalidate(response: HttpResponse) -> HttpResponse:
    """Let the browser keep a copy but ask every time; unchanged answers become 304s.

    The full page and its htmx partial share a URL, so caches must tell them apart.
    """
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
def video_detail(request: HttpRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "owner", "source"), pk=pk)
    ctx = {
        "video": video,
        "history": video.history.all(),
        "remixes": video.remixes.select_related("owner").order_by("requested_at"),
        "can_delete": request.user.is_staff or video.owner_id == request.user.pk,
        "poll_seconds": settings.TABLE_POLL_SECONDS,
    }
    notices = services.take_notifications(user=request.user)
    ctx.update(notices=notices.items, running=notices.running)
    if request.htmx:
        response = _revalidate(render(request, "jobs/video_detail.html#video-status", ctx))
        if not video.is_active and video.asset_state != Video.Assets.PENDING:
            response.status_code = HTMX_STOP_POLLING
        return response
    return _revalidate(render(request, "jobs/video_detail.html", ctx))


@require_http_methods(["GET", "POST"])
def remix(request: HttpRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    form = RemixForm(request.POST or None, initial={"prompt": source.prompt})
    if request.method == "POST" and form.is_valid():
        try:
            video = services.submit_remix(
                user=request.user,
                source=source,
                prompt=form.cleaned_data["prompt"],
                key=form.cleaned_data["key"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Remix recorded: it is on its way to the provider.")
            return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
    cost = services.estimate_cost(source.provider, source.model, source.size, source.seconds)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "jobs/remix.html", {"source": source, "form": form, "cost": cost}, status=status
    )


def _add_errors(form: RemixForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    try:
        services.delete_video(video=video, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(video)
    messages.success(request, "Deleted, here and at the provider.")
    return redirect("jobs:list")


@require_GET
def delete_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video, pk=pk)
    if not (request.user.is_staff or video.owner_id == request.user.pk):
        raise PermissionDenied
    return render(request, "jobs/delete.html", {"video": video})


RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponse:
    """Archived files for logged-in users, with HTTP Range so the player can seek."""
    root = Path(settings.MEDIA_ROOT).resolve()
    full = (root / path).resolve()
    if not full.is_relative_to(root) or Path(settings.MEDIA_ROOT, ".partial") in full.parents:
        raise Http404
    if not full.is_file():
        raise Http404
    size = full.stat().st_size
    content_type = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
    match = RANGE_RE.match(request.headers.get("Range", ""))
    if not match or match.groups() == ("", ""):
        response = FileResponse(full.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # "bytes=-N": the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle = full.open("rb")
    handle.seek(start)
    response = FileResponse(
        _limited(handle, end - start + 1), status=206, content_type=content_type
    )
    response["Content-Length"] = str(end - start + 1)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


def _limited(handle, remaining: int, chunk: int = 64 * 1024):  # type: ignore[no-untyped-def]
    with handle:
        while remaining > 0:
            data = handle.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


@csrf_exempt  # authenticated by the Standard Webhooks signature instead
@login_not_required
@require_POST
def webhook(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=provider_id, enabled=True)
    if len(request.body) > 64 * 1024:
        return HttpResponseBadRequest("payload too large")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        outcome = services.handle_webhook(provider=provider, headers=headers, body=request.body)
    except services.WebhookRejected as exc:
        log.warning("webhook from provider %s rejected: %s", provider.pk, exc)
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse("duplicate" if outcome.duplicate else "ok", content_type="text/plain")
