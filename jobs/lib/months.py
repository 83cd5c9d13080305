"""Budget months in the site's time zone."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_start(moment: datetime | None = None) -> datetime:
    """Midnight on the 1st of the month, in the site's time zone (budgets are per month)."""
    local = timezone.localtime(moment or timezone.now())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def parse_month(text: str) -> datetime | None:
    """`YYYY-MM` as the start of that month, or None when it is not one a page can show.

    Years 1 and 9999 are refused too: the page links the month before and after, which
    would fall outside what a datetime can hold.
    """
    match = MONTH_RE.match(text)
    if not match or not 1 <= int(match[2]) <= 12 or not 1 < int(match[1]) < 9999:
        return None
    return month_start().replace(year=int(match[1]), month=int(match[2]))
