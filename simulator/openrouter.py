"""OpenRouter's video API under /api/v1: `python -m simulator --dialect openrouter`.

Follows OpenRouter's published OpenAPI document, OpenRouterTeam/typescript-sdk
`.speakeasy/in.openapi.yaml` (paths /videos, /videos/{jobId}, /videos/{jobId}/content and
/videos/models; schemas VideoGenerationRequest, VideoGenerationResponse, VideoModel), and what
its video skill adds, OpenRouterTeam/skills `skills/openrouter-video/SKILL.md` (previous_job_id,
callback_url, the webhooks in `openrouter_webhooks`):

- `POST /videos` takes JSON only (model, prompt, duration as an integer, resolution and
  aspect_ratio or size, seed, generate_audio, callback_url over https, previous_job_id) and
  answers 202 `{id: "job-…", polling_url, status: "pending"}`. Idempotency-Key is ignored.
- `GET /videos/{id}`: status pending|in_progress|completed|failed|cancelled|expired, no
  progress; `unsigned_urls` and `usage {cost, is_byok}` once completed; `error` a plain string.
- `GET /videos/{id}/content?index=0`: the MP4 (Range as on /v1); 502 if the job failed.
- `GET /videos/models`: the catalog (no auth, as OpenRouter's).
- No list, remix or delete: those answer 405 (a known path) or 404, like any unknown path.
- Errors are `{"error": {"code": <int>, "message": "…"}}`.

Simulator conveniences, not OpenRouter's: a callback_url may be plain http to a loopback host
(so tests need no TLS), and a continuation's video is the source's length plus `duration`
(billed for `duration` only). The store, lifecycle, media and faults are the /v1 dialect's.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
import urllib.parse
from typing import Any

from . import api
from .config import Settings
from .content import asset
from .http import ApiError, Handler, Response, Route, allowed_methods
from .lifecycle import Job, Plan
from .openrouter_models import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_MODEL,
    MODELS,
    RESOLUTION_PIXELS,
    VideoModel,
    job_to_api,
    new_job_id,
    status_of,
)
from .openrouter_webhooks import OpenRouterWebhooks

PREFIX = "/api/v1"
ROUTES: tuple[Route, ...] = (
    Route("POST", re.compile(r"^/api/v1/videos$"), "POST /api/v1/videos", "create", creates=True),
    # Before /videos/{id}: "models" is not a job id.
    Route("GET", re.compile(r"^/api/v1/videos/models$"), "GET /api/v1/videos/models", "models"),
    Route(
        "GET",
        re.compile(r"^/api/v1/videos/(?P<id>[^/]+)$"),
        "GET /api/v1/videos/{id}",
        "retrieve",
        "retrieve",
    ),
    Route(
        "GET",
        re.compile(r"^/api/v1/videos/(?P<id>[^/]+)/content$"),
        "GET /api/v1/videos/{id}/content",
        "content",
        "content",
    ),
)
FIELDS = frozenset(
    {
        "model",
        "prompt",
        "duration",
        "resolution",
        "aspect_ratio",
        "size",
        "seed",
        "generate_audio",
        "callback_url",
        "previous_job_id",
    }
)
MAX_PROMPT = 32000
MAX_URL = 2048
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
HOST_HEADER = re.compile(r"^[A-Za-z0-9.\-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$")


class OpenRouterError(ApiError):
    """An error answered with OpenRouter's envelope: {"error": {"code": <int>, "message"}}."""

    def response(self) -> Response:
        return envelope(self.status, self.message, self.headers)


def envelope(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response.json({"error": {"code": status, "message": message}}, status, headers)


def bad(message: str) -> OpenRouterError:
    return OpenRouterError(400, message)


def handle(handler: Handler, method: str, path: str) -> Response | None:
    """Every request under /api/v1: counted, perhaps faulted, authenticated, then answered."""
    return api.serve(
        handler,
        method,
        path,
        routes=ROUTES,
        mount=PREFIX,
        answer=_answer,
        # Ours, or the shared parsing's (OpenAI-shaped): one envelope, OpenRouter's.
        refused=lambda exc: envelope(exc.status, exc.message, exc.headers),
        faulted=fault_response,
    )


def fault_response(fault: str, settings: Settings) -> Response:
    """The /v1 faults in OpenRouter's envelope (502 stays an HTML page from the proxy)."""
    if fault == "429":
        wait = settings.retry_after
        return envelope(
            429,
            "Rate limit exceeded",
            [("Retry-After", str(math.ceil(wait))), ("retry-after-ms", str(int(wait * 1000)))],
        )
    if fault == "500":
        return envelope(500, "Internal Server Error")
    if fault == "503":
        return envelope(503, "Service Unavailable")
    if fault == "502":
        return Response(502, api.HTML_502, "text/html; charset=utf-8")
    return Response(  # malformed: a job's JSON cut half way, as by a proxy
        200,
        b'{"id": "job-' + secrets.token_hex(8).encode() + b'", "status": "in_pro',
        "application/json",
    )


def _answer(
    handler: Handler, method: str, path: str, route: Route | None, params: dict[str, str]
) -> Response:
    if route is None:
        allowed = allowed_methods(ROUTES, path)
        if allowed:  # list, delete, ...: the path exists, the method does not
            raise OpenRouterError(
                405,
                f"Method {method} is not allowed on {path}.",
                headers=[("Allow", ", ".join(allowed))],
            )
        raise OpenRouterError(404, f"Not found: {method} {path}")
    if route.action == "models":
        return Response.json({"data": [model.to_api() for model in MODELS.values()]})
    _authenticate(handler)
    if route.action == "create":
        return create_job(handler)
    job_id = urllib.parse.unquote(params["id"])
    job = handler.app.store.get(job_id)
    if job is None:
        raise OpenRouterError(404, f"Video generation job '{job_id}' not found.")
    if route.action == "retrieve":
        return Response.json(job_to_api(handler.app.store, job, time.time(), _root(handler)))
    return job_content(handler, job_id, job)


def _authenticate(handler: Handler) -> None:
    scheme, _, key = handler.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise OpenRouterError(401, "Missing Authentication header")
    expected = handler.app.settings.api_key
    if expected is not None and not secrets.compare_digest(key.strip(), expected):
        raise OpenRouterError(401, "User not found.")


def _root(handler: Handler) -> str:
    """The simulator's own origin, for absolute URLs: the Host the client used, if sane."""
    host = handler.headers.get("Host", "")
    if not HOST_HEADER.match(host):
        address, port = handler.server.server_address[:2]
        host = f"{address!s}:{port}"
    return f"http://{host}"


# -- create -----------------------------------------------------------------------------------


def _json_body(handler: Handler) -> dict[str, Any]:
    media_type = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise bad("The request body must be JSON (Content-Type: application/json).")
    try:
        fields = json.loads(handler.body)
    except (ValueError, UnicodeDecodeError):
        raise bad("The request body is not valid JSON.") from None
    if not isinstance(fields, dict):
        raise bad("The request body must be a JSON object.")
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise bad(f"Unrecognized field '{unknown[0]}'.")
    return fields


def _integer(fields: dict[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{name}' must be an integer.")
    return value


def _string(fields: dict[str, Any], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(f"'{name}' must be a non-empty string.")
    if len(value) > limit:
        raise bad(f"'{name}' is longer than {limit} characters.")
    return value


def _shape(fields: dict[str, Any], model: VideoModel, default: str | None) -> str:
    """The size ("1280x720") from size, or resolution x aspect_ratio, within the model's."""
    size = _string(fields, "size", 20)
    resolution = _string(fields, "resolution", 20)
    ratio = _string(fields, "aspect_ratio", 20)
    if size is not None:
        if size not in model.sizes:
            raise bad(f"Size '{size}' is not supported by {model.id}: {', '.join(model.sizes)}.")
        if not _agrees(size, resolution, ratio):
            raise bad(f"Size '{size}' does not match the resolution or aspect_ratio given.")
        return size
    if default is not None and resolution is None and ratio is None:
        return default
    if default is not None:  # a continuation: what is not given stays the source's
        resolution = resolution or model.resolution_of(default)
        ratio = ratio or _ratio_of(default)
    resolution = resolution or model.resolutions[0]
    ratio = ratio or DEFAULT_ASPECT_RATIO
    if resolution not in model.resolutions:
        raise bad(
            f"Resolution '{resolution}' is not supported by {model.id}: "
            f"{', '.join(model.resolutions)}."
        )
    if ratio not in model.aspect_ratios:
        raise bad(
            f"Aspect ratio '{ratio}' is not supported by {model.id}: "
            f"{', '.join(model.aspect_ratios)}."
        )
    return model.size_of(resolution, ratio)


def _ratio_of(size: str) -> str | None:
    width, _, height = size.partition("x")
    for name, (w, h) in ASPECT_RATIOS.items():
        if width.isdigit() and height.isdigit() and int(width) * h == int(height) * w:
            return name
    return None


def _agrees(size: str, resolution: str | None, ratio: str | None) -> bool:
    width, _, height = size.partition("x")
    short = str(min(int(width), int(height)))
    if resolution is not None and str(RESOLUTION_PIXELS.get(resolution)) != short:
        return False
    return ratio is None or _ratio_of(size) == ratio


def _callback(fields: dict[str, Any]) -> str | None:
    url = _string(fields, "callback_url", MAX_URL)
    if url is None:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname  # parsed lazily: a broken "[::1" fails only here
    except ValueError:
        raise bad("'callback_url' is not a URL.") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host in LOOPBACK:
        return url  # the simulator's allowance for local receivers (see the module docstring)
    raise bad("'callback_url' must be an https URL.")


def _continued(handler: Handler, fields: dict[str, Any], model: VideoModel) -> Job | None:
    previous = _string(fields, "previous_job_id", 255)
    if previous is None:
        return None
    source = handler.app.store.get(previous)
    if source is None:
        raise OpenRouterError(404, f"Video generation job '{previous}' not found.")
    if source.model != model.id:
        raise bad(
            f"Job '{previous}' was made with {source.model}; a continuation runs on the same "
            f"model, not {model.id}."
        )
    if not model.continues:
        raise bad(f"{model.id} does not support continuing a previous job.")
    status = status_of(source, time.time())
    if status != "completed":
        raise OpenRouterError(
            409, f"Job '{previous}' is {status}; only a completed job can be continued."
        )
    return source


def create_job(handler: Handler) -> Response:
    fields = _json_body(handler)
    name = fields.get("model", DEFAULT_MODEL)
    if not isinstance(name, str) or name not in MODELS:
        raise bad(f"'{name}' is not a video model here. Models: {', '.join(MODELS)}.")
    model = MODELS[name]
    prompt = _string(fields, "prompt", MAX_PROMPT)
    if prompt is None:
        raise bad(f"'prompt' is required by {model.id}.")
    duration = _integer(fields, "duration")
    if duration is None:
        duration = model.durations[0]
    if duration not in model.durations:
        raise bad(
            f"Duration {duration} is not supported by {model.id}: "
            f"{', '.join(map(str, model.durations))}."
        )
    _integer(fields, "seed")  # accepted, and changes nothing: every render is deterministic
    if fields.get("generate_audio") is not None and not isinstance(fields["generate_audio"], bool):
        raise bad("'generate_audio' must be a boolean.")
    callback = _callback(fields)
    source = _continued(handler, fields, model)
    size = _shape(fields, model, source.size if source else None)
    if source is not None and size != source.size:
        raise bad(f"A continuation keeps the source's size ({source.size}), not {size}.")
    seconds = str(duration + (int(source.seconds) if source else 0))
    app = handler.app
    job, _ = app.store.create(
        model=model.id,
        prompt=prompt,
        size=size,
        seconds=seconds,
        plan=Plan.draw(app.settings, seconds),
        remixed_from=source.id if source else None,
        reference_from=source.reference if source else None,
        video_id=new_job_id(),
    )
    app.stats.job_created()
    root = _root(handler)
    if isinstance(app.webhooks, OpenRouterWebhooks):  # where, and with which URLs, to announce
        app.webhooks.register(job.id, callback, root)
    return Response.json(job_to_api(app.store, job, time.time(), root), 202)


# -- content ----------------------------------------------------------------------------------


def job_content(handler: Handler, job_id: str, job: Job) -> Response:
    unknown = sorted(set(handler.query) - {"index"})
    if unknown:
        raise bad(f"Unknown query parameter '{unknown[0]}'.")
    raw = handler.query_value("index")
    if raw is not None and not raw.isdigit():
        raise bad("'index' must be a non-negative integer.")
    index = int(raw) if raw else 0
    status = status_of(job, time.time())
    if status in ("failed", "cancelled"):
        raise OpenRouterError(502, "Provider returned error")
    if status == "expired":
        raise OpenRouterError(404, f"The video of job '{job_id}' expired.")
    if status != "completed":
        raise bad(f"Job '{job_id}' is {status}; its video is available once it is completed.")
    if index != 0:
        raise OpenRouterError(404, f"Job '{job_id}' has one output, at index 0.")
    return asset(handler, job, "video")  # the /v1 streaming, Range and padding
