"""New video: the form, and its menus partial that follows the chosen model."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from jobs import selectors
from jobs.forms import CreateVideoForm
from jobs.lib.images import REFERENCE_MAX_BYTES, REFERENCE_MAX_MB
from jobs.models import Provider
from jobs.services.submit import submit_create
from jobs.views.common import AuthedRequest, add_errors, status_for

# A little over the image cap, for the multipart framing and the text fields.
CREATE_MAX_REQUEST_BYTES = REFERENCE_MAX_BYTES + 256 * 1024


@require_http_methods(["GET", "POST"])
def create_video(request: AuthedRequest) -> HttpResponse:
    providers = selectors.creatable_providers()
    catalog = selectors.catalog(providers)
    request_error = ""
    if int(request.META.get("CONTENT_LENGTH") or 0) > CREATE_MAX_REQUEST_BYTES:
        # Refuse before Django spools a huge upload to disk only to throw it away.
        form = CreateVideoForm(providers=providers, catalog=catalog)
        request_error = f"The upload is larger than {REFERENCE_MAX_MB} MB; use a smaller image."
    else:
        form = CreateVideoForm(
            request.POST or None, request.FILES or None, providers=providers, catalog=catalog
        )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            video = submit_create(
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
            add_errors(form, exc)
        else:
            messages.success(request, "Video recorded: it is on its way to the provider.")
            return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
    ctx = _menus(form, catalog, form.data if form.is_bound else {})
    ctx.update(
        request_error=request_error,
        unavailable=Provider.objects.filter(enabled=True, can_create=False),
        budgets=selectors.budget_lines(request.user),
        max_bytes=REFERENCE_MAX_BYTES,
    )
    return render(request, "jobs/create.html", ctx, status=status_for(request))


@require_GET
def create_options(request: AuthedRequest) -> HttpResponse:
    """The create form's menus and cost for what is picked now (htmx, on every change)."""
    providers = selectors.creatable_providers()
    catalog = selectors.catalog(providers)
    form = CreateVideoForm(providers=providers, catalog=catalog)
    return render(request, "jobs/create.html#create-options", _menus(form, catalog, request.GET))


def _menus(form: CreateVideoForm, catalog: dict[str, Any], data: Any) -> dict[str, Any]:
    menu = selectors.create_menu(catalog, data)
    form.show_menu(menu)
    return {"form": form, "catalog": catalog, "menu": menu}
