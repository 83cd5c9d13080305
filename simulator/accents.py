"""Gateway accents on the wire: what each quirk in `quirks.QUIRKS` changes in an answer.

`api`, `content`, `derived` and `control` consult these functions at the points where a real
gateway differs from OpenAI's shape: before the key is checked (routes a gateway does not
have, LiteLLM's list hint), on the ids in a path, on every Video object sent, and on /content.
With no quirks set every function here is the identity, so the default simulator stays the
OpenAI shape the published document describes.
"""

from __future__ import annotations

import time
from typing import Any

from .http import ApiError, Handler, Route
from .lifecycle import Job
from .quirks import decode_litellm, encode_litellm, file_name

# Quirks that take a whole route away, as a gateway without that route answers (its router
# says 404 before any auth runs), by Route.action.
ABSENT_ROUTES: dict[str, str] = {
    "no_models": "models",
    "no_list": "list",
    "no_edits": "edit",
    "no_extensions": "extend",
    "content_url": "content",
}
STATUS_ALIASES = {"queued": "pending", "in_progress": "processing"}
NOT_COMPLETED = "Task is not completed yet"  # new-api's words for /content before the end


def has(handler: Handler, quirk: str) -> bool:
    return quirk in handler.app.settings.quirks


def refuse(handler: Handler, method: str, path: str, route: Route | None) -> None:
    """Answers a gateway gives before it looks at the key: missing routes, LiteLLM's list."""
    if route is None:
        return
    for quirk, action in ABSENT_ROUTES.items():
        if route.action == action and has(handler, quirk):
            raise ApiError(404, f"Invalid URL ({method} {path})", None, "not_found")
    if route.action == "delete" and has(handler, "no_delete"):
        raise ApiError(
            405, "Method Not Allowed", None, "method_not_allowed", headers=[("Allow", "GET, HEAD")]
        )
    if route.action == "list" and has(handler, "list_needs_hint"):
        hint = handler.query_value("custom_llm_provider") or handler.headers.get(
            "custom-llm-provider"
        )
        if not hint:
            # LiteLLM cannot tell which upstream to list without it, whatever the key.
            raise ApiError(
                400,
                "custom_llm_provider is required to list videos: add "
                "?custom_llm_provider=<provider> (for example openai) to the query.",
                "custom_llm_provider",
                "400",
            )


def inbound_id(handler: Handler, video_id: str) -> str:
    """The store's id for an id a client sent (LiteLLM's ids carry the upstream id inside)."""
    if has(handler, "litellm_ids"):
        return decode_litellm(video_id) or video_id
    return video_id


def public_id(handler: Handler, job: Job) -> str:
    """The id clients see for a job."""
    if has(handler, "litellm_ids"):
        return encode_litellm(job.model, job.id)
    return job.id


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def file_url(handler: Handler, job: Job) -> str:
    """Where the finished MP4 is served without auth (the `content_url` quirk)."""
    host = handler.headers.get("Host") or "{}:{}".format(*handler.server.server_address[:2])
    return f"http://{host}/files/{file_name(job.id)}.mp4"  # file_name percent-encodes


def video_json(handler: Handler, job: Job, now: float) -> dict[str, Any]:
    """The Video object as this gateway sends it."""
    body = job.to_api(now)
    quirks = handler.app.settings.quirks
    if not quirks:
        return body
    status = body["status"]
    # remixed_from_video_id stays the raw upstream id: LiteLLM passes it through unchanged.
    body["id"] = public_id(handler, job)
    if "unknown_status" in quirks and status == "in_progress":
        body["status"] = "unknown"
    elif "status_aliases" in quirks:
        body["status"] = STATUS_ALIASES.get(status, status)
    if "rfc3339_times" in quirks:
        for name in ("created_at", "completed_at", "expires_at"):
            if body[name] is not None:
                body[name] = rfc3339(body[name])
    if "no_progress" in quirks:
        del body["progress"]
    if "string_errors" in quirks and body["error"] is not None:
        body["error"] = body["error"]["message"]
    if "content_url" in quirks and status == "completed":
        body["metadata"] = {"url": file_url(handler, job)}
    return body


def content_variant(handler: Handler) -> str | None:
    """The variant a /content request asks for; None when the gateway drops the parameter."""
    if has(handler, "no_variants"):
        return None  # LiteLLM forwards only the id: the answer is always the MP4
    return handler.query_value("variant")


def not_ready(handler: Handler, video_id: str, status: str) -> ApiError:
    """The refusal of /content for a job that has not finished."""
    if has(handler, "content_400_until_done"):
        return ApiError(400, NOT_COMPLETED, None, "task_not_completed")
    return ApiError(
        400,
        f"Video '{video_id}' is {status}; content is only available for completed videos.",
        None,
        "video_not_ready",
    )
