"""Batch remix: the form, and a batch's page with its polled status partial."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from jobs import selectors
from jobs.forms import BatchRemixForm
from jobs.lib.prompts import BATCH_MAX_JOBS, batch_prompts
from jobs.models import Batch, Video
from jobs.services.submit import submit_batch
from jobs.views.common import AuthedRequest, add_errors, status_for


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
    ctx = {
        "source": source,
        "form": form,
        "unit": selectors.estimate_cost(source.provider, source.model, source.size, source.seconds),
        "count": count,
        "max_jobs": BATCH_MAX_JOBS,
        "budgets": selectors.budget_lines(request.user),
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
    }
    template = "jobs/batch_detail.html#batch-status" if request.htmx else "jobs/batch_detail.html"
    return render(request, template, ctx)
