"""One date format on every page: the time in the site's zone (static/js/time.js turns it into
the viewer's own) with how long ago, e.g. "3 Apr 2026, 14:05:12 UTC (3 minutes ago)"."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def when(value: datetime | None, empty: str = "—") -> SafeString | str:
    """A <time> with a machine-readable datetime, the local time and a relative hint."""
    if not isinstance(value, datetime):
        return empty
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" data-when>{}</time> <span class="ago" data-ago>({})</span>',
        value.isoformat(),
        f"{local.day} {local:%b %Y, %H:%M:%S} {local.tzname() or ''}".rstrip(),
        naturaltime(value),
    )
