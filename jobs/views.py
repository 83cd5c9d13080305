"""Thin views: request → service or selector → template."""

from __future__ import annotations

import json
import logging
import mimetypes
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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
from jobs.forms import BatchRemixForm, CreateVideoForm, ImportForm, KeyForm, RemixForm, SyncForm
from jobs.models import Batch, Provider, Video

log = logging.getLogger(__name__)


@require_GET
def video_list(request: HttpRequest) -> HttpResponse:
    # NUL cannot be stored or searched in PostgreSQL text (it would be a 500): drop it.
    filters = selectors.TableFilters.from_query(
        {k: v.replace("\x00", "") for k, v in request.GET.items()}
    )
    page = Paginator(
        selectors.videos_for_table(user=request.user, filters=filters), settings.TABLE_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    polling = any(video.will_change for video in page.object_list)
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
        # Beyond remix: the Retry button's key (stable, so a double click makes one retry)
        "retry_key": selectors.retry_key(video, video.retries.count())
        if video.status == Video.Status.FAILED
        else None,
    }
    notices = services.take_notifications(user=request.user)
    ctx.update(notices=notices.items, running=notices.running)
    if request.htmx:
        response = _revalidate(render(request, "jobs/video_detail.html#video-status", ctx))
        if not video.will_change:
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
    ctx = {"source": source, "form": form, "cost": cost, **_notices(request)}  # Beyond remix
    return render(request, "jobs/remix.html", ctx, status=status)


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
    if "\x00" in path:  # the filesystem calls below would raise ValueError (a 500)
        raise Http404
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


# === Beyond remix ==============================================================================
# Create, import/sync, family and compare, batch remix and retry, usage, and the notices
# partial. Each view: parse → service or selector → render; every write is in services.

# A little over the 10 MB image cap, for the multipart framing and the text fields.
CREATE_MAX_REQUEST_BYTES = services.REFERENCE_MAX_BYTES + 256 * 1024


def _notices(request: HttpRequest) -> dict[str, Any]:
    """Toasts for my finished jobs and my running count, for base.html's notices partial."""
    notices = services.take_notifications(user=request.user)
    return {"notices": notices.items, "running": notices.running}


def _first_choice(data: Mapping[str, Any], name: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    value = str(data.get(name) or "")
    return value if value in allowed else (allowed[0] if allowed else "")


def _create_selection(form: CreateVideoForm, catalog: dict[str, Any]) -> dict[str, str]:
    """The provider/model/size/seconds the page starts with: what was posted, else the first
    valid combination (the page's script keeps it valid from then on)."""
    data = form.data if form.is_bound else {}
    provider = _first_choice(data, "provider", catalog)
    models_ = catalog.get(provider, {}).get("models", {})
    model = _first_choice(data, "model", models_)
    sizes = models_.get(model, {})
    size = _first_choice(data, "size", sizes)
    seconds = _first_choice(data, "seconds", sizes.get(size, {}).get("seconds", []))
    return {"provider": provider, "model": model, "size": size, "seconds": seconds}


@require_http_methods(["GET", "POST"])
def create_video(request: HttpRequest) -> HttpResponse:
    providers = selectors.creatable_providers()
    catalog = selectors.catalog(providers)
    too_big = int(request.META.get("CONTENT_LENGTH") or 0) > CREATE_MAX_REQUEST_BYTES
    request_error = ""
    if request.method == "POST" and too_big:
        # Refuse before Django spools a huge upload to disk only to throw it away.
        form = CreateVideoForm(providers=providers, catalog=catalog)
        request_error = "The upload is larger than 10 MB; use a smaller reference image."
    else:
        form = CreateVideoForm(
            request.POST or None, request.FILES or None, providers=providers, catalog=catalog
        )
    if request.method == "POST" and form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            video = services.submit_create(
                user=request.user,
                provider=data["provider"],
                prompt=data["prompt"],
                model=data["model"],
                size=data["size"],
                seconds=data["seconds"],
                key=data["key"],
                input_reference=data["input_reference"] or None,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Video recorded: it is on its way to the provider.")
            return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
    selected = _create_selection(form, catalog)
    if not form.is_bound:
        form.initial.update(selected)
    spec = catalog.get(selected["provider"], {}).get("models", {}).get(selected["model"], {})
    price = spec.get(selected["size"], {}).get("price")
    cost = Decimal(price) * int(selected["seconds"]) if price and selected["seconds"] else None
    ctx = {
        "form": form,
        "catalog": catalog,
        "catalog_json": json.dumps(catalog),  # read by static/js/create.js
        "request_error": request_error,
        "selected": selected,
        "cost": cost,
        "unavailable": Provider.objects.filter(enabled=True, can_create=False),
        "budgets": selectors.budget_lines(request.user),
        **_notices(request),
    }
    return render(
        request, "jobs/create.html", ctx, status=400 if request.method == "POST" else 200
    )


@require_http_methods(["GET", "POST"])
def import_videos(request: HttpRequest) -> HttpResponse:
    """Import one job by id (any logged-in user) or sync a whole provider (staff only).

    Import by id is safe for anyone: it only adopts a job the site's own key can already read,
    as an unowned "imported" row. A sync pulls in everything the key can list, so it is kept
    for staff (and `manage.py sync_videos` for cron).
    """
    action = request.POST.get("action") if request.method == "POST" else None
    import_form = ImportForm(request.POST if action == "import" else None)
    sync_form = SyncForm(request.POST if action == "sync" else None)
    if action == "import" and import_form.is_valid():
        try:
            video, created = services.import_one(
                provider=import_form.cleaned_data["provider"],
                video_id=import_form.cleaned_data["video_id"],
            )
        except ValidationError as exc:
            _add_errors(import_form, exc)
        else:
            messages.success(
                request, f"Imported as video #{video.pk}." if created else "Already here."
            )
            return redirect(video)
    elif action == "sync":
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can sync a whole provider.")
        if sync_form.is_valid():
            try:
                result = services.sync_provider(provider=sync_form.cleaned_data["provider"])
            except ValidationError as exc:
                _add_errors(sync_form, exc)
            else:
                messages.success(
                    request,
                    f"{result.provider}: {result.seen} jobs listed, {result.new} new "
                    "imported.",
                )
                return redirect("jobs:import")
    ctx = {
        "import_form": import_form,
        "sync_form": sync_form,
        "unlistable": Provider.objects.filter(enabled=True, can_list=False),
        **_notices(request),
    }
    return render(request, "jobs/import.html", ctx, status=400 if action else 200)


@require_GET
def family(request: HttpRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "owner"), pk=pk)
    ctx = {"video": video, "family": selectors.family(video), **_notices(request)}
    return render(request, "jobs/family.html", ctx)


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    videos = selectors.videos_for_compare(selectors.parse_ids(request.GET.getlist("ids")))
    first = videos[0].prompt if videos else ""
    rows = [
        {"video": v, "diff": selectors.prompt_diff(first, v.prompt) if i else None}
        for i, v in enumerate(videos)
    ]
    ctx = {
        "rows": rows,
        "playable": sum(1 for v in videos if v.playable),
        "max": selectors.MAX_COMPARE,
        **_notices(request),
    }
    return render(request, "jobs/compare.html", ctx, status=200 if len(videos) >= 2 else 400)


@require_http_methods(["GET", "POST"])
def batch_remix(request: HttpRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    form = BatchRemixForm(request.POST or None, initial={"prompts": source.prompt})
    count = 0
    if request.method == "POST" and form.is_valid():
        prompts = services.batch_prompts(
            form.cleaned_data["prompts"], form.cleaned_data["variations"]
        )
        count = len(prompts)
        try:
            batch = services.submit_batch(
                user=request.user, source=source, prompts=prompts, key=form.cleaned_data["key"]
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Batch of {count} remixes recorded.")
            return redirect(batch)
    unit = services.estimate_cost(source.provider, source.model, source.size, source.seconds)
    ctx = {
        "source": source,
        "form": form,
        "unit": unit,
        "count": count,
        "max_jobs": services.BATCH_MAX_JOBS,
        "budgets": selectors.budget_lines(request.user),
        **_notices(request),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "jobs/batch_new.html", ctx, status=status)


@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("owner", "source"), pk=pk)
    videos = selectors.batch_videos(batch)
    summary = selectors.summarise_batch(videos)
    ctx = {
        "batch": batch,
        "videos": videos,
        "summary": summary,
        "can_retry": request.user.is_staff or batch.owner_id == request.user.pk,
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        **_notices(request),
    }
    if request.htmx:
        response = render(request, "jobs/batch_detail.html#batch-status", ctx)
        if not summary.active:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "jobs/batch_detail.html", ctx)


@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "source", "batch"), pk=pk)
    form = KeyForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("The retry form has no key; reload the page.")
    try:
        new = services.retry_video(user=request.user, video=video, key=form.cleaned_data["key"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(video.batch or video)
    messages.success(request, f"Retrying #{video.pk} as a new job, #{new.pk}.")
    return redirect(new.batch or new)


MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    month = selectors.month_start()
    match = MONTH_RE.match(request.GET.get("month", ""))
    if match and 1 <= int(match[2]) <= 12:
        month = month.replace(year=int(match[1]), month=int(match[2]))
    ctx = {
        "usage": selectors.usage(viewer=request.user, month=month),
        "budgets": (
            selectors.all_budget_lines()
            if request.user.is_staff
            else selectors.budget_lines(request.user)
        ),
        "previous": (month - timedelta(days=1)).strftime("%Y-%m"),
        "next": selectors.next_month(month).strftime("%Y-%m"),
        **_notices(request),
    }
    return render(request, "jobs/usage.html", ctx)


@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """base.html's notices partial: toasts for my finished jobs and my running count.

    Polled by static/js/notify.js only while I have running jobs and the tab is visible.
    """
    return render(request, "base.html#notices", _notices(request))
