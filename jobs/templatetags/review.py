"""Comments in templates: a moment as people read it (0:07.5)."""

from __future__ import annotations

from django import template

from jobs.lib.timecodes import timecode_label

register = template.Library()


@register.filter
def timecode(value: float | None) -> str:
    return "" if value is None else timecode_label(float(value))
