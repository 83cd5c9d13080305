"""`{{ video|download_name:video.video_file }}`: the name a download link saves under."""

from __future__ import annotations

from django import template
from django.db.models.fields.files import FieldFile

from jobs.lib.names import download_name as name_for
from jobs.models import Video

register = template.Library()


@register.filter
def download_name(video: Video, stored: FieldFile | str) -> str:
    """<id>-<prompt-slug>.<ext> for one of the video's archived files."""
    name = stored if isinstance(stored, str) else stored.name
    return name_for(video.pk, video.prompt, name or "")
