"""Downloads: GET /v1/videos/{id}/content, and /files/{id}.mp4 for the `content_url` quirk.

Both stream the same generated files (with Range support and the optional padding box); the
/files route is what a gateway's storage URL in `metadata.url` looks like: no auth, no faults.
"""

from __future__ import annotations

import re
import time
import urllib.parse

from . import accents
from .http import ApiError, Handler, Response, choices, invalid, not_found, parse_range
from .lifecycle import Job
from .media import VARIANTS, padding_bytes
from .quirks import file_name

FILE_PATH = re.compile(r"^/files/(?P<name>[^/]+)\.mp4$")


def video_content(handler: Handler, video_id: str) -> Response:
    variant = accents.content_variant(handler)
    job = handler.app.store.get(video_id)
    if job is None:
        raise not_found(video_id)
    if variant is None:
        variant = "video"
    elif variant not in VARIANTS:  # "" too: `?variant=` is a wrong value, not a missing one
        raise invalid(
            "variant",
            f"Invalid value: '{variant}'. Supported values are: {choices(tuple(VARIANTS))}.",
        )
    now = time.time()
    state = job.state(now)
    if state.status != "completed":
        raise accents.not_ready(handler, video_id, state.status)
    if state.expires_at is not None and now >= state.expires_at:
        raise ApiError(
            410,
            f"The assets of video '{video_id}' expired at {int(state.expires_at)}.",
            None,
            "video_expired",
        )
    return asset(handler, job, variant)


def serve_file(handler: Handler, method: str, path: str) -> Response:
    """GET /files/{id}.mp4: the finished MP4 of a video, without auth (a storage URL)."""
    match = FILE_PATH.match(path)
    if match is None or method not in ("GET", "HEAD"):
        raise ApiError(404, f"Invalid URL ({method} {path})")
    video_id = urllib.parse.unquote(match["name"])
    handler.app.stats.request("GET /files/{id}.mp4", video_id, "content")
    job = handler.app.store.get(video_id)
    now = time.time()
    if job is None or job.state(now).status != "completed":
        raise ApiError(404, "No such file.", None, "not_found")
    expires_at = job.state(now).expires_at
    if expires_at is not None and now >= expires_at:
        raise ApiError(410, "This file has expired.", None, "video_expired")
    return asset(handler, job, "video")


def asset(handler: Handler, job: Job, variant: str) -> Response:
    """One finished asset of a job, generated on first use, honouring a Range header."""
    store = handler.app.store
    reference = store.reference_dir / job.reference if job.reference else None
    path = handler.app.media.ensure(
        job.id,
        variant,
        prompt=job.prompt,
        size=job.size,
        seconds=int(job.seconds),
        label=f"{job.model}  {job.size}  {job.seconds}s",
        reference=reference,
        fps=int(handler.app.settings.fps),
    )
    file_size = path.stat().st_size
    pad = 0
    if variant == "video":
        pad = (
            job.pad_bytes
            if job.pad_bytes is not None
            else store.set_pad_bytes(job.id, padding_bytes(handler.app.settings.pad_video_mb))
        )
    total = file_size + pad
    _, content_type = VARIANTS[variant]
    name = file_name(job.id)  # an opaque id may hold "/" or a quote
    headers = [
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", f'inline; filename="{name}{path.suffix}"'),
        ("ETag", f'"{name}-{variant}-{total}"'),
    ]
    start, end = 0, total
    range_header = handler.headers.get("Range")
    status = 200
    if range_header:
        parsed = parse_range(range_header, total)
        if parsed is None:
            raise ApiError(
                416,
                f"Range not satisfiable ({range_header}).",
                None,
                "range_not_satisfiable",
                headers=[("Content-Range", f"bytes */{total}")],
            )
        start, end = parsed
        status = 206
        headers.append(("Content-Range", f"bytes {start}-{end - 1}/{total}"))
    return Response(
        status,
        content_type=content_type,
        headers=headers,
        file=path,
        file_size=file_size,
        pad=pad,
        start=start,
        length=end - start,
    )
