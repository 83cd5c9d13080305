"""File names for downloads: unique per video and readable, "12-a-fox-in-the-snow.mp4" rather
than the archive's own "video.mp4" for every one of them."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from django.utils.text import slugify

SLUG_MAX = 60  # enough words to recognise the prompt; file names stay short
# The archive stores each variant as archive/<pk>/<attempt>/<variant>.<ext> (jobs/archive.py;
# archives made before attempts had folders of their own have no <attempt>/).
ARCHIVED_RE = re.compile(
    r"^archive/(\d{1,19})/(?:[0-9a-f]{1,32}/)?(video|thumbnail|spritesheet)\.\w{1,8}$"
)


def download_name(pk: int, prompt: str, stored_name: str) -> str:
    """<id>-<prompt-slug>.<ext>, with "-thumbnail" / "-spritesheet" for the stills."""
    stored = PurePosixPath(stored_name)
    slug = slugify(prompt)[:SLUG_MAX].strip("-") or "video"
    variant = "" if stored.stem == "video" else f"-{stored.stem}"
    return f"{pk}-{slug}{variant}{stored.suffix}"


def archived_pk(stored_name: str) -> int | None:
    """The video a file under archive/ belongs to, from its path; None for anything else."""
    match = ARCHIVED_RE.match(stored_name)
    return int(match[1]) if match else None
