"""A moment in a video as people read it: 0:07.5, 1:02, 1:02:03."""

from __future__ import annotations


def timecode_label(seconds: float) -> str:
    """Minutes and seconds (hours when there are any), with tenths only when they are not 0."""
    whole, tenths = divmod(round(max(seconds, 0.0) * 10), 10)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
    return f"{clock}.{tenths}" if tenths else clock
