"""Import one job by id (any user) or sync a whole provider (staff)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from jobs.forms import ImportForm, SyncForm
from jobs.models import Provider
from jobs.services.imports import import_one, missing_source, sync_provider
from jobs.views.common import AuthedRequest, add_errors


@require_http_methods(["GET", "POST"])
def import_videos(request: AuthedRequest) -> HttpResponse:
    """Import by id is safe for anyone: it only adopts a job the site's own key can already
    read, as an unowned "imported" row. A sync pulls in everything the key can list, so it is
    kept for staff (and `manage.py sync_videos` for cron)."""
    action = request.POST.get("action") if request.method == "POST" else None
    import_form = ImportForm(request.POST if action == "import" else None)
    sync_form = SyncForm(request.POST if action == "sync" else None)
    if action == "import" and import_form.is_valid():
        if done := _import(request, import_form):
            return done
    elif action == "sync":
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can sync a whole provider.")
        if sync_form.is_valid() and (done := _sync(request, sync_form)):
            return done
    ctx = {
        "import_form": import_form,
        "sync_form": sync_form,
        "unlistable": Provider.objects.filter(enabled=True, can_list=False),
    }
    return render(request, "jobs/import.html", ctx, status=400 if action else 200)


def _import(request: AuthedRequest, form: ImportForm) -> HttpResponse | None:
    try:
        video, created = import_one(
            provider=form.cleaned_data["provider"], video_id=form.cleaned_data["video_id"]
        )
    except ValidationError as exc:
        add_errors(form, exc)
        return None
    done = f"Imported as video #{video.pk}." if created else "Already here."
    messages.success(request, f"{done} {missing_source(video)}".strip())
    return redirect(video)


def _sync(request: AuthedRequest, form: SyncForm) -> HttpResponse | None:
    try:
        result = sync_provider(provider=form.cleaned_data["provider"])
    except ValidationError as exc:
        add_errors(form, exc)
        return None
    messages.success(
        request, f"{result.provider}: {result.seen} jobs listed, {result.new} new imported."
    )
    return redirect("jobs:import")
