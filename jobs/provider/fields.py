"""Lenient readers for the fields a provider sends: gateways send numbers as strings and back."""

from __future__ import annotations

import builtins
import math
from datetime import UTC, datetime
from typing import Final

# The longest value of each Video field this dashboard stores: the database columns' sizes
# (jobs.models), and the Videos API's own 32,000-character prompt rule (jobs.lib.prompts reads
# PROMPT_MAX_LENGTH from here). Defined once, here, because this module loads no HTTP library:
# Django-side code can import it cheaply. A longer value from a provider is refused.
ID_MAX_LENGTH: Final = 512  # id, remixed_from_video_id, list cursors
MODEL_MAX_LENGTH: Final = 100
SIZE_MAX_LENGTH: Final = 20
SECONDS_MAX_LENGTH: Final = 10
STATUS_MAX_LENGTH: Final = 16
ERROR_CODE_MAX_LENGTH: Final = 100
PROMPT_MAX_LENGTH: Final = 32_000
# The provider's error message is prose for a human: cut, not refused, past this length.
ERROR_MESSAGE_MAX_LENGTH: Final = 4_000


def kind(value: object) -> str:
    return "null" if value is None else builtins.type(value).__name__


def as_text(value: object) -> str | None:
    """A string field; numbers are accepted (seconds: 8 -> "8"), anything else is None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def as_number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def progress(value: object) -> int:
    number = as_number(value)
    if number is None:
        return 0
    return max(0, min(100, round(number)))  # a percentage, whatever a gateway sends


def timestamp(value: object) -> datetime | None:
    """Unix seconds (int, float or numeric string) or ISO 8601 -> aware UTC datetime."""
    number = as_number(value)
    if number is None:
        if isinstance(value, str) and value.strip():
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return None
    if number <= 0:
        return None  # 0 is how some gateways say "not set"; no video dates from 1970
    if number >= 1e11:
        number /= 1000  # milliseconds: 1e11 seconds would be the year 5138
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


# Statuses as this dashboard knows them, whatever the gateway calls them (reference section 9:
# new-api says "unknown" for states it does not map, Veo "processing", Runway "cancelled").
STATUSES: Final = frozenset(
    {"queued", "in_progress", "completed", "failed", "cancelled", "expired", "unknown"}
)
_STATUS_ALIASES: Final = {
    "pending": "queued",
    "submitted": "queued",
    "not_started": "queued",
    "processing": "in_progress",
    "running": "in_progress",
    "generating": "in_progress",
    "succeeded": "completed",
    "success": "completed",
    "done": "completed",
    "error": "failed",
    "failure": "failed",
    "canceled": "cancelled",
}
# The provider's own status string is kept for the record (and shown), cut to this length.
RAW_STATUS_MAX_LENGTH: Final = 64
# A download URL read from a provider's answer: longer ones are not taken.
URL_MAX_LENGTH: Final = 2048


def normal_status(raw: str | None) -> str:
    """One of STATUSES: "Processing", "in-progress" and "IN_PROGRESS" are one state."""
    if not raw:
        return "unknown"
    key = raw.strip().lower().replace("-", "_").replace(" ", "_")
    key = _STATUS_ALIASES.get(key, key)
    return key if key in STATUSES else "unknown"


def http_url(value: object) -> str | None:
    """An absolute http(s) URL with a host, at most URL_MAX_LENGTH long; anything else None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > URL_MAX_LENGTH or any(ord(ch) < 0x21 for ch in url):
        return None
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
        return None
    return url
