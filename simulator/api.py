"""The Videos API under /v1: routes, bearer auth, fault injection and the video endpoints."""

from __future__ import annotations

import math
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable

from .config import Settings
from .http import (
    ApiError,
    Handler,
    Response,
    Route,
    choices,
    invalid,
    match_route,
    not_found,
    parse_range,
)
from .inputs import check_choice, check_prompt, check_reference
from .lifecycle import (
    DEFAULT_MODEL,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    MODELS,
    SECONDS,
    SIZES,
    Job,
    Plan,
    model_sizes,
)
from .media import VARIANTS, padding_bytes
from .store import NotFinished, UnknownCursor

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

ROUTES: tuple[Route, ...] = (
    Route("POST", re.compile(r"^/v1/videos$"), "POST /v1/videos", "create", creates=True),
    Route("GET", re.compile(r"^/v1/videos$"), "GET /v1/videos", "list"),
    Route(
        "GET",
        re.compile(r"^/v1/videos/(?P<id>[^/]+)$"),
        "GET /v1/videos/{id}",
        "retrieve",
        "retrieve",
    ),
    Route(
        "DELETE",
        re.compile(r"^/v1/videos/(?P<id>[^/]+)$"),
        "DELETE /v1/videos/{id}",
        "delete",
        "delete",
    ),
    Route(
        "GET",
        re.compile(r"^/v1/videos/(?P<id>[^/]+)/content$"),
        "GET /v1/videos/{id}/content",
        "content",
        "content",
    ),
    Route(
        "POST",
        re.compile(r"^/v1/videos/(?P<id>[^/]+)/remix$"),
        "POST /v1/videos/{id}/remix",
        "remix",
        "remix",
        creates=True,
    ),
)


def handle(handler: Handler, method: str, path: str) -> Response | None:
    """Every request under /v1: counted, perhaps faulted, authenticated, then answered."""
    app = handler.app
    route, params = match_route(ROUTES, method, path)
    if route is None:
        app.stats.request(f"{method} (unknown /v1 path)", None, None)
    else:
        video_id = urllib.parse.unquote(params["id"]) if "id" in params else None
        app.stats.request(route.template, video_id, route.per_video)
    creates = route is not None and route.creates
    content = route is not None and route.action == "content"
    fault = app.faults.pick(method, path, creates, content)
    if fault is not None:
        app.stats.fault(fault)
        if fault == "drop":
            handler.drop()
            return None
        if fault == "timeout":
            time.sleep(app.settings.hang_seconds)
        elif fault not in AFTER_ANSWER_FAULTS:
            return fault_response(fault, app.settings)
    try:
        response = _api_response(handler, method, path, route, params)
    except ApiError as exc:
        response = exc.response()
    if fault == "accept_then_drop":
        handler.drop()
        return None
    if fault == "accept_then_timeout":
        time.sleep(app.settings.hang_seconds)
    if fault == "create_then_500":  # the job exists; the client is told the server failed
        return fault_response("500", app.settings)
    if fault == "truncate" and response.status in (200, 206):
        # Half the body, no Content-Length, then a clean close: by its framing the answer
        # looks whole, so only a client that checks what it got can tell.
        response.truncate_at = response.content_length() // 2
    return response


# Faults done to (or after) the real answer, rather than instead of it.
AFTER_ANSWER_FAULTS = frozenset(
    {"accept_then_drop", "accept_then_timeout", "create_then_500", "truncate"}
)


def fault_response(fault: str, settings: Settings) -> Response:
    """What an injected fault answers (drop and the stalls are done by `handle`)."""
    if fault == "429":
        wait = settings.retry_after
        return ApiError(
            429,
            f"Rate limit reached for requests. Please try again in {wait:g}s.",
            None,
            "rate_limit_exceeded",
            "rate_limit_exceeded",
            headers=[
                ("Retry-After", str(math.ceil(wait))),
                ("retry-after-ms", str(int(wait * 1000))),
                ("x-ratelimit-remaining-requests", "0"),
            ],
        ).response()
    if fault == "500":
        return ApiError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        ).response()
    if fault == "503":
        return ApiError(
            503,
            "The server is overloaded or not ready yet.",
            type_="server_error",
            code="service_unavailable",
        ).response()
    if fault == "502":
        return Response(502, HTML_502, "text/html; charset=utf-8")
    # malformed: a 200 whose JSON stops half way, like a proxy cutting a buffered body.
    return Response(
        200,
        b'{"id": "video_'
        + secrets.token_hex(8).encode()
        + b'", "object": "video", "status": "in_pro',
        "application/json",
    )


def _authenticate(handler: Handler) -> None:
    header = handler.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API "
            "key in an Authorization header using Bearer auth (i.e. "
            "Authorization: Bearer YOUR_KEY).",
            None,
            "invalid_api_key",
        )
    expected = handler.app.settings.api_key
    if expected is not None and not secrets.compare_digest(key, expected):
        shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
        raise ApiError(401, f"Incorrect API key provided: {shown}.", None, "invalid_api_key")


def _api_response(
    handler: Handler, method: str, path: str, route: Route | None, params: dict[str, str]
) -> Response:
    _authenticate(handler)
    if route is None:
        raise ApiError(404, f"Invalid URL ({method} {path})")
    if "id" in params:
        return BY_ID[route.action](handler, urllib.parse.unquote(params["id"]))
    return COLLECTION[route.action](handler)


def _idempotency(handler: Handler, path: str) -> tuple[str, str] | None:
    key = handler.headers.get("Idempotency-Key")
    if key is None or not key.strip():
        return None
    if handler.app.settings.ignore_idempotency:
        return None  # like a provider that never heard of the header
    if len(key) > 255:
        raise invalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters.")
    return path, key.strip()


def _created(handler: Handler, job: Job, created: bool) -> Response:
    if created:
        handler.app.stats.job_created()
    headers = [] if created else [("idempotent-replayed", "true")]
    return Response.json(job.to_api(time.time()), 200, headers)


def create_video(handler: Handler) -> Response:
    fields, files = handler.form({"prompt", "model", "seconds", "size", "input_reference"})
    prompt = check_prompt(fields.get("prompt"))
    model = check_choice(fields, "model", DEFAULT_MODEL, MODELS)
    seconds = check_choice(
        fields, "seconds", DEFAULT_SECONDS, SECONDS, f"one of {choices(SECONDS)} (a string)"
    )
    size = check_choice(fields, "size", DEFAULT_SIZE, SIZES)
    if size not in model_sizes(model):
        raise invalid(
            "size",
            f"Invalid size '{size}' for model '{model}'. Supported "
            f"sizes for this model are: {choices(model_sizes(model))}.",
        )
    reference = check_reference(fields, files, size)
    job, created = handler.app.store.create(
        model=model,
        prompt=prompt,
        size=size,
        seconds=seconds,
        plan=Plan.draw(handler.app.settings, seconds),
        reference=reference,
        idempotency=_idempotency(handler, "/v1/videos"),
    )
    return _created(handler, job, created)


def remix_video(handler: Handler, video_id: str) -> Response:
    fields, _ = handler.form({"prompt"}, allow_files=False)
    prompt = check_prompt(fields.get("prompt"))
    now = time.time()
    source = handler.app.store.get(video_id)
    if source is None:
        raise not_found(video_id)
    status = source.state(now).status
    if status != "completed":
        raise ApiError(
            400,
            f"Video '{video_id}' is {status}; only completed videos can be remixed.",
            None,
            "video_not_completed",
        )
    # A remix keeps the source's model, length and size (what responses show in practice).
    job, created = handler.app.store.create(
        model=source.model,
        prompt=prompt,
        size=source.size,
        seconds=source.seconds,
        plan=Plan.draw(handler.app.settings, source.seconds),
        remixed_from=source.id,
        reference_from=source.reference,
        idempotency=_idempotency(handler, f"/v1/videos/{video_id}/remix"),
    )
    return _created(handler, job, created)


def retrieve_video(handler: Handler, video_id: str) -> Response:
    job = handler.app.store.get(video_id)
    if job is None:
        raise not_found(video_id)
    now = time.time()
    headers = []
    if job.state(now).status in ("queued", "in_progress"):
        # Tell pollers (the SDK honours it) how often polling is useful at this speed.
        poll_ms = max(50, min(10000, int(job.duration * 1000 / 20)))
        headers.append(("openai-poll-after-ms", str(poll_ms)))
    return Response.json(job.to_api(now), 200, headers)


def list_videos(handler: Handler) -> Response:
    after = handler.query_value("after")
    order = handler.query_value("order") or "desc"
    if order not in ("asc", "desc"):
        raise invalid("order", f"Invalid value: '{order}'. Supported values are: 'asc', 'desc'.")
    raw_limit = handler.query_value("limit")
    try:
        limit = 20 if raw_limit is None else int(raw_limit)
    except ValueError:
        raise invalid(
            "limit", f"Invalid 'limit': expected an integer, got '{raw_limit}'.", "invalid_type"
        ) from None
    if not 1 <= limit <= 100:
        raise invalid("limit", f"Invalid 'limit': {limit}. Expected a value between 1 and 100.")
    try:
        jobs, has_more = handler.app.store.list(after=after or None, limit=limit, order=order)
    except UnknownCursor:
        raise invalid("after", f"Invalid 'after': no video with id '{after}'.") from None
    now = time.time()
    data = [job.to_api(now) for job in jobs]
    return Response.json(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


def delete_video(handler: Handler, video_id: str) -> Response:
    try:
        job = handler.app.store.delete(video_id, time.time())
    except NotFinished as exc:
        if handler.app.settings.allow_cancel:  # a provider that can cancel a running job
            cancelled = handler.app.store.cancel(video_id, time.time())
            if cancelled is not None:
                return Response.json(cancelled.to_api(time.time()))
        raise ApiError(
            400,
            f"Video '{video_id}' is {exc}; only completed or failed videos can be deleted.",
            None,
            "video_not_finished",
        ) from None
    if job is None:
        raise not_found(video_id)
    return Response.json({"id": video_id, "object": "video.deleted", "deleted": True})


def video_content(handler: Handler, video_id: str) -> Response:
    variant = handler.query_value("variant") or "video"
    job = handler.app.store.get(video_id)
    if job is None:
        raise not_found(video_id)
    if variant not in VARIANTS:
        raise invalid(
            "variant",
            f"Invalid value: '{variant}'. Supported values are: {choices(tuple(VARIANTS))}.",
        )
    now = time.time()
    state = job.state(now)
    if state.status != "completed":
        raise ApiError(
            400,
            f"Video '{video_id}' is {state.status}; content is only "
            "available for completed videos.",
            None,
            "video_not_ready",
        )
    if state.expires_at is not None and now >= state.expires_at:
        raise ApiError(
            410,
            f"The assets of video '{video_id}' expired at {int(state.expires_at)}.",
            None,
            "video_expired",
        )
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
    ext = path.suffix
    headers = [
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", f'inline; filename="{job.id}{ext}"'),
        ("ETag", f'"{job.id}-{variant}-{total}"'),
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


# The endpoints by Route.action: on the collection, and on one video (given its id).
COLLECTION: dict[str, Callable[[Handler], Response]] = {
    "create": create_video,
    "list": list_videos,
}
BY_ID: dict[str, Callable[[Handler, str], Response]] = {
    "retrieve": retrieve_video,
    "delete": delete_video,
    "content": video_content,
    "remix": remix_video,
}
