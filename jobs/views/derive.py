"""Edits and extensions of a completed video: a form each, recorded like a remix."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from jobs import selectors
from jobs.forms import EditForm, ExtendForm
from jobs.models import Video
from jobs.services.submit import derive_refusal, submit_edit, submit_extension
from jobs.views.common import AuthedRequest, add_errors, status_for


@require_http_methods(["GET", "POST"])
def edit(request: AuthedRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    cost = selectors.estimate_cost(source.provider, source.model, source.size, source.seconds)

    def submit(data: dict[str, Any]) -> Video:
        return submit_edit(user=request.user, source=source, prompt=data["prompt"], key=data["key"])

    form = EditForm(request.POST or None)
    return _page(request, source, form, Video.Kind.EDIT, cost, submit)


@require_http_methods(["GET", "POST"])
def extend(request: AuthedRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    menu = selectors.extension_menu(source)
    lengths = [(s, f"+{s} s" + (f" (${c:.2f})" if c is not None else "")) for s, c in menu]
    form = ExtendForm(request.POST or None, lengths=lengths)
    picked = str(form["seconds"].value() or menu[0][0])

    def submit(data: dict[str, Any]) -> Video:
        return submit_extension(
            user=request.user,
            source=source,
            prompt=data["prompt"],
            seconds=data["seconds"],
            key=data["key"],
        )

    return _page(request, source, form, Video.Kind.EXTENSION, dict(menu).get(picked), submit)


def _page(
    request: AuthedRequest,
    source: Video,
    form: EditForm,
    kind: Video.Kind,
    cost: Decimal | None,
    submit: Callable[[dict[str, Any]], Video],
) -> HttpResponse:
    """The form page for one kind; on a valid POST, the service records it (or says why not)."""
    refusal = derive_refusal(source, kind)
    if request.method == "POST" and form.is_valid():
        try:
            video = submit(form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, f"{kind.label} recorded: it is on its way to the provider.")
            return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
    budgets = selectors.budget_lines(request.user)
    tightest = selectors.least_left(budgets)
    over = tightest if tightest and cost and cost > tightest.left else None
    ctx = {"source": source, "form": form, "kind": kind, "cost": cost, "refusal": refusal,
           "budgets": budgets, "over_budget": over}  # fmt: skip
    return render(request, "jobs/derive.html", ctx, status=status_for(request))
