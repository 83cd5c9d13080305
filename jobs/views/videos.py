"""One video: its detail page (and polled status partial), remix, retry, cancel, delete,
lineage, and the decision on an unconfirmed send (send again / give up)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import selectors, table_version
from jobs.forms import RemixForm, RetryForm
from jobs.lib.prompts import prompt_diff
from jobs.models import Charge, Video
from jobs.services.manage import cancel_refusal, cancel_video, delete_video, give_up, send_again
from jobs.services.submit import derive_refusals, retry_video, submit_remix
from jobs.views.common import AuthedRequest, add_errors, revalidate, status_for
from jobs.views.polls import conditional_poll, detail_poll_context, versioned
from jobs.views.review import review_panel


def _detail_version(request: AuthedRequest, pk: int) -> table_version.DetailVersion:
    return table_version.detail_version(user=request.user, pk=pk)


@require_GET
@conditional_poll(_detail_version)  # an unchanged tick of the panel is a 304 before this runs
def video_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "owner", "source"), pk=pk)
    retried_as = video.retries.first() if video.status == Video.Status.FAILED else None
    ctx = {
        "video": video,
        "history": video.history.all(),
        "remixes": video.remixes.select_related("owner").order_by("requested_at"),
        "can_manage": video.can_be_managed_by(request.user),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        "retried_as": retried_as,
        # The Retry button's key: stable, so a double click makes one retry.
        "retry_key": selectors.retry_key(video, 0)
        if video.status == Video.Status.FAILED and retried_as is None
        else None,
        "charge": Charge.objects.filter(video=video).first(),
        "cancel_refusal": _cancel_refusal(video),
        "derive_refusals": derive_refusals(video),  # edit / extend: "" when offered
    }
    if not video.will_change:  # the review card: once nothing changes by itself (no poll)
        ctx.update(review_panel(video, request.user))
    else:  # the panel polls: it says what it shows, so the next tick can be a 304
        ctx.update(detail_poll_context(request, lambda: _detail_version(request, pk)))
    template = "jobs/video_detail.html#video-status" if request.htmx else "jobs/video_detail.html"
    return revalidate(versioned(request, render(request, template, ctx), ctx))


def _cancel_refusal(video: Video) -> str | None:
    """None: no Cancel button is due (finished). "": one is offered. Else why there is none."""
    if not video.is_active:
        return None
    if video.submission == Video.Submission.PENDING:
        return ""  # never sent: cancelled here, whatever the provider can do
    if not video.video_id:
        return (
            "It is on its way to the provider: it can be cancelled once the provider confirms it."
        )
    return cancel_refusal(video.provider)


@require_http_methods(["GET", "POST"])
def remix(request: AuthedRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    form = RemixForm(
        request.POST or None, initial={"prompt": source.prompt}, source_prompt=source.prompt
    )
    if request.method == "POST" and form.is_valid():
        try:
            video = submit_remix(
                user=request.user,
                source=source,
                prompt=form.cleaned_data["prompt"],
                key=form.cleaned_data["key"],
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, "Remix recorded: it is on its way to the provider.")
            return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
    cost = selectors.estimate_cost(source.provider, source.model, source.size, source.seconds)
    budgets = selectors.budget_lines(request.user)
    tightest = selectors.least_left(budgets)
    ctx = {
        "source": source,
        "form": form,
        "cost": cost,
        "budgets": budgets,
        "over_budget": tightest if tightest and cost and cost > tightest.left else None,
        "warn_unchanged": form.has_error(NON_FIELD_ERRORS, "unchanged"),
    }
    return render(request, "jobs/remix.html", ctx, status=status_for(request))


@require_GET
def delete_confirm(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video, pk=pk)
    if not video.can_be_managed_by(request.user):
        raise PermissionDenied
    return render(request, "jobs/delete.html", {"video": video})


@require_POST
def delete(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    try:
        done = delete_video(video=video, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(video)
    messages.success(request, done)
    return redirect("jobs:list")


@require_http_methods(["GET", "POST"])
def retry(request: AuthedRequest, pk: int) -> HttpResponse:
    """GET: the retry form, prompt pre-filled. POST: from it, or the one-click Retry button."""
    video = get_object_or_404(Video.objects.select_related("provider", "source", "batch"), pk=pk)
    if not video.can_be_managed_by(request.user):
        raise PermissionDenied
    earlier = video.retries.first()
    if earlier is not None:  # once per failed job: say where the retry is
        messages.info(request, f"#{video.pk} was already retried as #{earlier.pk}.")
        return redirect(earlier.batch or earlier if request.method == "POST" else earlier)
    key = selectors.retry_key(video, 0)  # stable: a double click (or two tabs) makes one retry
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None:
        data.setdefault("key", str(key))  # the table row's Retry button sends no key
    form = RetryForm(data, initial={"key": key, "prompt": video.prompt})
    if request.method == "POST":
        if "key" in form.errors or not form.is_valid() and "prompt" not in request.POST:
            return HttpResponseBadRequest("The retry form's key is not valid; reload the page.")
        edited = "prompt" in request.POST  # the form page; the button sends only the key
        try:
            new = retry_video(
                user=request.user,
                video=video,
                key=form.cleaned_data["key"],
                prompt=form.cleaned_data["prompt"] if edited else None,
            )
        except ValidationError as exc:
            if not edited:
                messages.error(request, " ".join(exc.messages))
                return redirect(video.batch or video)
            add_errors(form, exc)
        else:
            messages.success(request, f"Retrying #{video.pk} as a new job, #{new.pk}.")
            return redirect(new.batch or new)
    ctx = {"video": video, "form": form, "failed": video.status == Video.Status.FAILED}
    return render(request, "jobs/retry.html", ctx, status=status_for(request))


@require_POST
def cancel(request: AuthedRequest, pk: int) -> HttpResponse:
    """Stop a job: here if it was never sent, else at the provider where it can cancel."""
    return _act(request, pk, lambda video: cancel_video(video_id=video.pk, user=request.user))


@require_POST
def unconfirmed_send_again(request: AuthedRequest, pk: int) -> HttpResponse:
    """Send an unconfirmed job once more, at the user's risk (it may make a second video)."""

    def act(video: Video) -> str:
        send_again(video_id=video.pk, user=request.user)
        return f"Sending #{video.pk} again."

    return _act(request, pk, act)


@require_POST
def unconfirmed_give_up(request: AuthedRequest, pk: int) -> HttpResponse:
    """Stop an unconfirmed job here: marked failed, and counted as no spend."""

    def act(video: Video) -> str:
        give_up(video_id=video.pk, user=request.user)
        return f"Gave up on #{video.pk}; it is marked failed and costs nothing."

    return _act(request, pk, act)


def _act(request: AuthedRequest, pk: int, action: Callable[[Video], str]) -> HttpResponse:
    """Run a service on one video; its words (or its refusal) as the message, then back."""
    video = get_object_or_404(Video, pk=pk)
    try:
        words = action(video)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, words)
    return _back(request, video)


def _back(request: AuthedRequest, video: Video) -> HttpResponse:
    """Back to the page the form was on: the table row, or the detail page."""
    if request.POST.get("back") == "list":
        return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
    if request.POST.get("back") == "batch" and video.batch_id:
        return redirect("jobs:batch", video.batch_id)
    return redirect(video)


@require_GET
def family(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "owner"), pk=pk)
    return render(request, "jobs/family.html", {"video": video, "family": selectors.family(video)})


@require_GET
def compare(request: AuthedRequest) -> HttpResponse:
    videos = selectors.videos_for_compare(selectors.parse_ids(request.GET.getlist("ids")))
    first = videos[0].prompt if videos else ""
    rows = [
        {"video": v, "diff": prompt_diff(first, v.prompt) if i else None}
        for i, v in enumerate(videos)
    ]
    ctx = {
        "rows": rows,
        "playable": sum(1 for v in videos if v.playable),
        "max": selectors.MAX_COMPARE,
    }
    return render(request, "jobs/compare.html", ctx, status=200 if len(videos) >= 2 else 400)
