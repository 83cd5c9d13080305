"""Template context for every page: my notices, read only when a template shows them."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from jobs.notify import take_notifications


def notices(request: HttpRequest) -> dict[str, object]:
    # Lazy: taking notices marks them as told, so only a page that shows them may take them
    # (the admin's pages render with this context too, and show none).
    # An htmx request (a poll, a partial) leaves @mentions for the next page (take_notifications).
    full_page = not getattr(request, "htmx", False)
    return {
        "notices": SimpleLazyObject(
            lambda: take_notifications(user=request.user, mentions=full_page)
        )
    }
