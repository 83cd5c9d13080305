"""Batch remix: the form, a batch's page with its polled status partial, "retry all failed",
and the Batches page (mine / all, with live progress)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import selectors
from jobs.forms import BatchRemixForm, KeyForm
from jobs.lib.paging import BoundedPaginator
from jobs.lib.prompts import BATCH_MAX_JOBS, batch_prompts
from jobs.models import Batch, Video
from jobs.services.submit import retry_failed, submit_batch
from jobs.views.common import AuthedRequest, add_errors, revalidate, status_for

BATCHES_PAGE_SIZE = 20


@require_http_methods(["GET", "POST"])
def batch_remix(request: AuthedRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    form = BatchRemixForm(request.POST or None, initial={"prompts": source.prompt})
    count = 0
    if request.method == "POST" and form.is_valid():
        prompts = batch_prompts(form.cleaned_data["prompts"], form.cleaned_data["variations"])
        count = len(prompts)
        try:
            batch = submit_batch(
                user=request.user, source=source, prompts=prompts, key=form.cleaned_data["key"]
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, f"Batch of {count} remixes recorded.")
            return redirect(batch)
    unit = selectors.estimate_cost(source.provider, source.model, source.size, source.seconds)
    budgets = selectors.budget_lines(request.user)
    tightest = selectors.least_left(budgets)
    ctx = {
        "source": source,
        "form": form,
        "unit": unit,
        "count": count,
        "max_jobs": BATCH_MAX_JOBS,
        "budgets": budgets,
        "left": tightest.left if tightest else None,  # read by static/js/guard.js too
        "over_budget": bool(tightest and unit and unit * max(count, 1) > tightest.left),
    }
    return render(request, "jobs/batch_new.html", ctx, status=status_for(request))


@require_GET
def batch_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("owner", "source"), pk=pk)
    videos = selectors.batch_videos(batch)
    ctx = {
        "batch": batch,
        "videos": videos,
        "summary": selectors.summarise_batch(videos),
        "can_retry": batch.can_be_managed_by(request.user),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        # "Retry all failed": stable while the failures stand, so a double click sends one set.
        "retry_all_key": uuid.uuid5(
            batch.idempotency_key or uuid.UUID(int=batch.pk),
            "retry-all-" + ",".join(str(v.pk) for v in videos if v.status == Video.Status.FAILED),
        ),
    }
    template = "jobs/batch_detail.html#batch-status" if request.htmx else "jobs/batch_detail.html"
    return render(request, template, ctx)


@require_POST
def batch_retry_failed(request: AuthedRequest, pk: int) -> HttpResponse:
    """One new job per failed member without a retry yet, all or nothing (budget included)."""
    batch = get_object_or_404(Batch, pk=pk)
    form = KeyForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("The retry form has no key; reload the page.")
    try:
        retries = retry_failed(user=request.user, batch=batch, key=form.cleaned_data["key"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        numbers = ", ".join(f"#{v.pk}" for v in retries)
        messages.success(request, f"Retrying {len(retries)} failed jobs as {numbers}.")
    return redirect(batch)


@require_GET
def batch_list(request: AuthedRequest) -> HttpResponse:
    """Every batch (or only mine), newest first, each with its live summary."""
    mine = request.GET.get("mine", "1") == "1"  # mine unless asked for all
    page = BoundedPaginator(
        selectors.batches_for_list(user=request.user, mine=mine), BATCHES_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    rows = selectors.batch_rows(page.object_list)
    ctx = {
        "page": page,
        "rows": rows,
        "mine": mine,
        "polling": any(row.summary.active for row in rows),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        "list_url": f"{request.path}?mine={'1' if mine else '0'}&page={page.number}",
    }
    template = "jobs/batches.html#batch-list" if request.htmx else "jobs/batches.html"
    return revalidate(render(request, template, ctx))
