"""What every view module shares: the typed request, form errors, revalidation headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class AuthedRequest(HttpRequest):
    """Every app page needs a login (LoginRequiredMiddleware) and has htmx's details.

    Only the login page and the webhook are open to anonymous visitors; neither takes this.
    """

    user: User  # narrower than HttpRequest's: the login is required
    htmx: HtmxDetails


def add_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's refusal next to the field it names, or at the top of the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def revalidate(response: HttpResponse) -> HttpResponse:
    """Let the browser keep a copy but ask every time; unchanged answers become 304s.

    The full page and its htmx partial share a URL, so caches must tell them apart.
    """
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("HX-Request",))
    return response


def status_for(request: HttpRequest) -> int:
    """A form page answers 400 when a POST did not go through, so scripts can tell."""
    return 400 if request.method == "POST" else 200
