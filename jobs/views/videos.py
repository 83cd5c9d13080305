"""One video: its detail page (and polled status partial), remix, retry, delete, lineage, and
the decision on an unconfirmed send (send again / give up)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import selectors
from jobs.forms import KeyForm, RemixForm
from jobs.lib.prompts import prompt_diff
from jobs.models import Video
from jobs.services.manage import delete_video, give_up, send_again
from jobs.services.submit import retry_video, submit_remix
from jobs.views.common import AuthedRequest, add_errors, revalidate, status_for


@require_GET
def video_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "owner", "source"), pk=pk)
    ctx = {
        "video": video,
        "history": video.history.all(),
        "remixes": video.remixes.select_related("owner").order_by("requested_at"),
        "can_manage": video.can_be_managed_by(request.user),
        "poll_seconds": settings.TABLE_POLL_SECONDS,
        # The Retry button's key: stable, so a double click makes one retry.
        "retry_key": selectors.retry_key(video, video.retries.count())
        if video.status == Video.Status.FAILED
        else None,
    }
    template = "jobs/video_detail.html#video-status" if request.htmx else "jobs/video_detail.html"
    return revalidate(render(request, template, ctx))


@require_http_methods(["GET", "POST"])
def remix(request: AuthedRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Video.objects.select_related("provider"), pk=pk)
    form = RemixForm(request.POST or None, initial={"prompt": source.prompt})
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
    ctx = {"source": source, "form": form, "cost": cost}
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
        delete_video(video=video, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(video)
    messages.success(request, "Deleted, here and at the provider.")
    return redirect("jobs:list")


@require_POST
def retry(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video.objects.select_related("provider", "source", "batch"), pk=pk)
    form = KeyForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("The retry form has no key; reload the page.")
    try:
        new = retry_video(user=request.user, video=video, key=form.cleaned_data["key"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(video.batch or video)
    messages.success(request, f"Retrying #{video.pk} as a new job, #{new.pk}.")
    return redirect(new.batch or new)


@require_POST
def unconfirmed_send_again(request: AuthedRequest, pk: int) -> HttpResponse:
    """Send an unconfirmed job once more, at the user's risk (it may make a second video)."""
    video = get_object_or_404(Video, pk=pk)
    try:
        send_again(video_id=video.pk, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Sending #{video.pk} again.")
    return _back(request, video)


@require_POST
def unconfirmed_give_up(request: AuthedRequest, pk: int) -> HttpResponse:
    """Stop an unconfirmed job here: marked failed, and counted as no spend."""
    video = get_object_or_404(Video, pk=pk)
    try:
        give_up(video_id=video.pk, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Gave up on #{video.pk}; it is marked failed and costs nothing.")
    return _back(request, video)


def _back(request: AuthedRequest, video: Video) -> HttpResponse:
    """Back to the page the form was on: the table row, or the detail page."""
    if request.POST.get("back") == "list":
        return redirect(f"{reverse('jobs:list')}#video-{video.pk}")
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
