"""Archived files behind the login, and the provider's webhook endpoint."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobs.lib import storage
from jobs.lib.names import archived_pk, download_name
from jobs.models import Provider, Video
from jobs.services.webhooks import WebhookRejected, handle_webhook

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 64 * 1024


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Archived files for logged-in users: from disk with HTTP Range so the player can seek, or
    (archives in a bucket) a redirect to a short-lived presigned URL, after the same check."""
    pk = archived_pk(path)
    prompt = Video.objects.filter(pk=pk).values_list("prompt", flat=True).first() if pk else None
    # Inline, so the player still plays it; a download (or "Save as") gets this name.
    filename = download_name(pk, prompt, path) if pk and prompt is not None else None
    navigate = request.headers.get("Sec-Fetch-Mode") == "navigate"
    return storage.serve(
        path, request.headers.get("Range", ""), filename=filename, navigate=navigate
    )


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
