"""Lenient readers for the fields a provider sends: gateways send numbers as strings and back."""

from __future__ import annotations

import builtins
import math
from datetime import UTC, datetime


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
