"""`{% bulk_bar %}` (the bar that acts on the selected videos) and `{% collection_picker video %}`
(a video's collections, with add and remove), each rendered from its own template so the pages
that show them need no extra context from their views."""

from __future__ import annotations

from typing import Any

from django import template

from jobs.models import Collection, Video
from jobs.services.collections import collections_visible_to

register = template.Library()

MENU_MAX = 200  # collections offered in a menu; the Collections page lists them all


def _menu(user: Any) -> list[Collection]:
    return list(collections_visible_to(user).order_by("name", "pk")[:MENU_MAX])


@register.inclusion_tag("jobs/_bulk_bar.html", takes_context=True)
def bulk_bar(context: template.Context, current: Collection | None = None) -> dict[str, Any]:
    """`current`: on a collection's own page, the collection the bar removes from."""
    request = context["request"]
    return {
        "collections": [] if current else _menu(request.user),
        "current": current,
        "next": request.get_full_path(),
        "user": request.user,
    }


@register.inclusion_tag("jobs/collection_picker.html", takes_context=True)
def collection_picker(context: template.Context, video: Video) -> dict[str, Any]:
    request = context["request"]
    menu = _menu(request.user)
    holding = set(
        video.collections.filter(pk__in=[c.pk for c in menu]).values_list("pk", flat=True)
    )
    return {
        "video": video,
        "member_of": [c for c in menu if c.pk in holding],
        "others": [c for c in menu if c.pk not in holding],
        "next": request.get_full_path(),
    }
