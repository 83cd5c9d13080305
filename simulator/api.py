"""The Videos API under /v1: routes, bearer auth, fault injection and the video endpoints."""

from __future__ import annotations

import math
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable

from . import accents
from .config import Settings
from .content import video_content
from .derived import created, edit_video, extend_video, idempotency, new_id, remix_video
from .http import (
    ApiError,
    Handler,
    Response,
    Route,
    allowed_methods,
    choices,
    invalid,
    match_route,
    not_found,
)
from .inputs import check_choice, check_prompt, check_reference
from .lifecycle import (
    DEFAULT_MODEL,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    MODELS,
    SECONDS,
    SIZES,
    Plan,
    model_sizes,
)
from .store import NotFinished, UnknownCursor

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

ROUTES: tuple[Route, ...] = (
    Route("GET", re.compile(r"^/v1/models$"), "GET /v1/models", "models"),
    Route("POST", re.compile(r"^/v1/videos$"), "POST /v1/videos", "create", creates=True),
    Route("GET", re.compile(r"^/v1/videos$"), "GET /v1/videos", "list"),
    Route("POST", re.compile(r"^/v1/videos/edits$"), "POST /v1/videos/edits", "edit", creates=True),
    Route(
        "POST",
        re.compile(r"^/v1/videos/extensions$"),
        "POST /v1/videos/extensions",
        "extend",
        creates=True,
    ),
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
    return serve(
        handler,
        method,
        path,
        routes=ROUTES,
        mount="/v1",
        answer=_api_response,
        refused=ApiError.response,
        faulted=fault_response,
    )


Answer = Callable[[Handler, str, str, "Route | None", dict[str, str]], Response]


def serve(
    handler: Handler,
    method: str,
    path: str,
    *,
    routes: tuple[Route, ...],
    mount: str,
    answer: Answer,
    refused: Callable[[ApiError], Response],
    faulted: Callable[[str, Settings], Response],
) -> Response | None:
    """One request to a dialect's mount: counted, perhaps faulted, then answered.

    Shared by the OpenAI routes here and OpenRouter's (`openrouter.handle`): the dialects
    differ in their routes, their answers and their error envelopes (`refused`, `faulted`),
    not in how requests are counted or faults injected. None: the connection was dropped.
    """
    app = handler.app
    route, params = match_route(routes, method, path)
    if route is None:
        app.stats.request(f"{method} (unknown {mount} path)", None, None)
    else:
        video_id = urllib.parse.unquote(params["id"]) if "id" in params else None
        app.stats.request(route.template, video_id, route.per_video)
    creates = route is not None and route.creates
    content = route is not None and route.action == "content"
    fault = app.faults.pick(method, path, creates, content)
    app.faults.delay()
    if fault is not None:
        app.stats.fault(fault)
        if fault == "drop":
            handler.drop()
            return None
        if fault == "timeout":
            time.sleep(app.settings.hang_seconds)
        elif fault not in AFTER_ANSWER_FAULTS:
            return faulted(fault, app.settings)
    try:
        response = answer(handler, method, path, route, params)
    except ApiError as exc:
        response = refused(exc)
    if fault == "accept_then_drop":
        handler.drop()
        return None
    if fault == "accept_then_timeout":
        time.sleep(app.settings.hang_seconds)
    if fault == "create_then_500":  # the job exists; the client is told the server failed
        return faulted("500", app.settings)
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
    accents.refuse(handler, method, path, route)
    _authenticate(handler)
    if route is None:
        allowed = allowed_methods(ROUTES, path)
        if allowed:  # a known path: say which methods it has, as HTTP asks of a 405
            raise ApiError(
                405,
                f"Method {method} is not allowed on {path}; allowed: {', '.join(allowed)}.",
                None,
                "method_not_allowed",
                headers=[("Allow", ", ".join(allowed))],
            )
        raise ApiError(404, f"Invalid URL ({method} {path})")
    if "id" in params:
        video_id = accents.inbound_id(handler, urllib.parse.unquote(params["id"]))
        return BY_ID[route.action](handler, video_id)
    return COLLECTION[route.action](handler)


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
    job, is_new = handler.app.store.create(
        model=model,
        prompt=prompt,
        size=size,
        seconds=seconds,
        plan=Plan.draw(handler.app.settings, seconds),
        reference=reference,
        idempotency=idempotency(handler, "/v1/videos"),
        video_id=new_id(handler),
    )
    return created(handler, job, is_new)


def retrieve_video(handler: Handler, video_id: str) -> Response:
    job = handler.app.store.get(video_id)
    if job is None:
        raise not_found(video_id)
    now = time.time()
    headers = []
    if job.state(now).status in ("queued", "in_progress"):
        # Tell pollers (the SDK honours it) how often polling is useful at this speed: a
        # round figure from a second up, as a provider would say, not the job's exact time.
        poll_ms = max(50, min(10000, int(job.duration * 1000 / 20)))
        poll_ms = poll_ms if poll_ms < 1000 else round(poll_ms, -2)
        headers.append(("openai-poll-after-ms", str(poll_ms)))
    return Response.json(accents.video_json(handler, job, now), 200, headers)


def list_videos(handler: Handler) -> Response:
    after = handler.query_value("after")
    # An empty value is a wrong value, refused like any other (the document has no default).
    order = handler.query_value("order")
    order = "desc" if order is None else order
    if order not in ("asc", "desc"):
        raise invalid("order", f"Invalid value: '{order}'. Supported values are: 'asc', 'desc'.")
    raw_limit = handler.query_value("limit")
    try:
        limit = 20 if raw_limit is None else int(raw_limit)
    except ValueError:
        raise invalid(
            "limit", f"Invalid 'limit': expected an integer, got '{raw_limit}'.", "invalid_type"
        ) from None
    if not 0 <= limit <= 100:  # 0 is allowed by the document: an empty page, has_more told
        raise invalid("limit", f"Invalid 'limit': {limit}. Expected a value between 0 and 100.")
    cursor = None if after is None else accents.inbound_id(handler, after)
    try:
        jobs, has_more = handler.app.store.list(after=cursor, limit=limit, order=order)
    except UnknownCursor:
        raise invalid("after", f"Invalid 'after': no video with id '{after}'.") from None
    now = time.time()
    data = [accents.video_json(handler, job, now) for job in jobs]
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
                return Response.json(accents.video_json(handler, cancelled, time.time()))
        raise ApiError(
            400,
            f"Video '{video_id}' is {exc}; only completed or failed videos can be deleted.",
            None,
            "video_not_finished",
        ) from None
    if job is None:
        raise not_found(video_id)
    deleted = {"id": accents.public_id(handler, job), "object": "video.deleted", "deleted": True}
    return Response.json(deleted)


# GET /v1/models: when each model came out (unix seconds), as OpenAI's model list says.
MODEL_DATES = {
    "sora-2": 1759708800,
    "sora-2-pro": 1759708800,
    "sora-2-2025-10-06": 1759708800,
    "sora-2-pro-2025-10-06": 1759708800,
    "sora-2-2025-12-08": 1765152000,
}


def list_models(handler: Handler) -> Response:
    data = [
        {"id": model, "object": "model", "created": MODEL_DATES[model], "owned_by": "openai"}
        for model in MODELS
    ]
    return Response.json({"object": "list", "data": data})


# The endpoints by Route.action: on the collection, and on one video (given its id).
COLLECTION: dict[str, Callable[[Handler], Response]] = {
    "models": list_models,
    "create": create_video,
    "list": list_videos,
    "edit": edit_video,
    "extend": extend_video,
}
BY_ID: dict[str, Callable[[Handler, str], Response]] = {
    "retrieve": retrieve_video,
    "delete": delete_video,
    "content": video_content,
    "remix": remix_video,
}
