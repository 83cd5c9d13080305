"""Jobs made from a finished video: remix, edit and extension (reference sections 2.7 and 7).

Each takes a prompt and a completed source video, keeps the source's model and size, records
the source in `remixed_from_video_id` (the one source field the Video object has) and honours
Idempotency-Key like create. An extension's `seconds` is the stitched total: the source's plus
the new segment, and its MP4 is really that long.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import accents
from .http import ApiError, Handler, Response, Upload, choices, invalid, not_found
from .inputs import check_choice, check_prompt
from .lifecycle import Job, Plan
from .quirks import new_video_id

# Length of the new segment of an extension: the SDK's documented values (4, 8, 12, 16, 20).
EXTENSION_SECONDS: tuple[str, ...] = ("4", "8", "12", "16", "20")


def idempotency(handler: Handler, scope: str) -> tuple[str, str] | None:
    """The (scope, key) an Idempotency-Key stores a new job under, if the client sent one."""
    key = handler.headers.get("Idempotency-Key")
    if key is None or not key.strip():
        return None
    if handler.app.settings.ignore_idempotency:
        return None  # like a provider that never heard of the header
    if len(key) > 255:
        raise invalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters.")
    return scope, key.strip()


def created(handler: Handler, job: Job, is_new: bool) -> Response:
    """The answer to a POST that made (or, replayed by its key, found) a job."""
    if is_new:
        handler.app.stats.job_created()
    headers = [] if is_new else [("idempotent-replayed", "true")]
    return Response.json(accents.video_json(handler, job, time.time()), 200, headers)


def new_id(handler: Handler) -> str:
    return new_video_id(handler.app.settings.quirks)


def completed_source(handler: Handler, video_id: str, done_to: str) -> Job:
    """The source video by id: it must exist and be completed (`done_to`: "remixed"...)."""
    source = handler.app.store.get(video_id)
    if source is None:
        raise not_found(video_id)
    status = source.state(time.time()).status
    if status != "completed":
        raise ApiError(
            400,
            f"Video '{video_id}' is {status}; only completed videos can be {done_to}.",
            None,
            "video_not_completed",
        )
    return source


def derive(
    handler: Handler, source: Job, prompt: str, scope: str, added: str | None = None
) -> Response:
    """A new job from `source`; `added` seconds make it an extension, longer by that much."""
    seconds = str(int(source.seconds) + int(added)) if added else source.seconds
    job, is_new = handler.app.store.create(
        model=source.model,
        prompt=prompt,
        size=source.size,
        seconds=seconds,
        # Rendering time follows what is generated: only the new segment of an extension.
        plan=Plan.draw(handler.app.settings, added or source.seconds),
        remixed_from=source.id,
        reference_from=source.reference,
        idempotency=idempotency(handler, scope),
        video_id=new_id(handler),
    )
    return created(handler, job, is_new)


def remix_video(handler: Handler, video_id: str) -> Response:
    fields, _ = handler.form({"prompt"}, allow_files=False)
    prompt = check_prompt(fields.get("prompt"))
    source = completed_source(handler, video_id, "remixed")
    # A remix keeps the source's model, length and size (what responses show in practice).
    return derive(handler, source, prompt, f"/v1/videos/{video_id}/remix")


def edit_video(handler: Handler) -> Response:
    fields, files = handler.form({"prompt", "video"})
    prompt = check_prompt(fields.get("prompt"))
    source = completed_source(handler, source_id(handler, fields, files), "edited")
    return derive(handler, source, prompt, "/v1/videos/edits")


def extend_video(handler: Handler) -> Response:
    fields, files = handler.form({"prompt", "seconds", "video"})
    prompt = check_prompt(fields.get("prompt"))
    if fields.get("seconds") is None:
        raise invalid(
            "seconds", "Missing required parameter: 'seconds'.", "missing_required_parameter"
        )
    added = check_choice(
        fields,
        "seconds",
        "",
        EXTENSION_SECONDS,
        f"one of {choices(EXTENSION_SECONDS)} (a string)",
    )
    source = completed_source(handler, source_id(handler, fields, files), "extended")
    return derive(handler, source, prompt, "/v1/videos/extensions", added)


def source_id(handler: Handler, fields: dict[str, Any], files: dict[str, Upload]) -> str:
    """The id in `video: {"id": ...}` (JSON, a JSON string, or multipart `video[id]`)."""
    if "video" in files:
        raise invalid(
            "video",
            'Uploading a video is not supported: give a completed video as {"id": "<video id>"}.',
            "unsupported_video_upload",
        )
    value = fields.get("video")
    if value is None:
        raise invalid("video", "Missing required parameter: 'video'.", "missing_required_parameter")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if (
        not isinstance(value, dict)
        or set(value) != {"id"}
        or not isinstance(value["id"], str)
        or not value["id"]
    ):
        raise invalid(
            "video", """Invalid 'video': expected an object {"id": "<video id>"}.""", "invalid_type"
        )
    return accents.inbound_id(handler, value["id"])
