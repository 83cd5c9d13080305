"""django.tasks wrappers: the fast path for one-off work (submit, archive).

The tracker (`manage.py track_videos`) finds the same work in the database if a task is lost,
so a task only ever says "look at this video now". Arguments are ids: they must be JSON.
"""

from __future__ import annotations

from django.tasks import task


@task()
def advance_video(video_id: int) -> bool:
    """Submit, refresh or archive one video, if it is due and nobody else holds it."""
    from jobs import services

    return services.advance_video(video_id=video_id)
