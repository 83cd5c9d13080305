"""Archived files behind the login, and the provider's webhook endpoint."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobs.archive import PARTIAL_DIR
from jobs.lib.names import archived_pk, download_name
from jobs.lib.ranges import file_response
from jobs.models import Provider, Video
from jobs.services.webhooks import WebhookRejected, handle_webhook

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 64 * 1024


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Archived files for logged-in users, with HTTP Range so the player can seek."""
    if "\x00" in path:  # the filesystem calls below would raise ValueError (a 500)
        raise Http404
    root = Path(settings.MEDIA_ROOT).resolve()
    full = (root / path).resolve()
    # Resolved on both sides: a relative MEDIA_ROOT must not let `.partial/…` through.
    if not full.is_relative_to(root) or full.is_relative_to(root / PARTIAL_DIR):
        raise Http404
    if not full.is_file():
        raise Http404
    response = file_response(full, request.headers.get("Range", ""))
    pk = archived_pk(path)
    prompt = Video.objects.filter(pk=pk).values_list("prompt", flat=True).first() if pk else None
    if pk and prompt is not None and response.status_code in (200, 206):
        # Inline, so the player still plays it; a download (or "Save as") gets this name.
        disposition = content_disposition_header(
            as_attachment=False, filename=download_name(pk, prompt, path)
        )
        if disposition:  # None only for an empty name, which download_name never gives
            response["Content-Disposition"] = disposition
    return response


@csrf_exempt  # authenticated by the provider's signature instead (Standard Webhooks or OpenRouter)
@login_not_required
@require_POST
def webhook(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=provider_id, enabled=True)
    if len(request.body) > WEBHOOK_MAX_BYTES:
        return HttpResponseBadRequest("payload too large")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        outcome = handle_webhook(provider=provider, headers=headers, body=request.body)
    except WebhookRejected as exc:
        log.warning("webhook from provider %s rejected: %s", provider.pk, exc)
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse("duplicate" if outcome.duplicate else "ok", content_type="text/plain")
