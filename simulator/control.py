"""The /_sim control endpoints: settings, scripted faults, seeding, expiry, stats, reset.

No auth, JSON in and out, never faulted (see `python -m simulator --help`).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Any

from . import accents
from .config import ConfigError
from .http import ApiError, Handler, Response, not_found
from .lifecycle import MODELS, SECONDS, model_sizes
from .store import NotFinished


def handle(handler: Handler, method: str, path: str) -> Response:
    app = handler.app
    try:
        payload = json.loads(handler.body) if handler.body.strip() else {}
    except ValueError:
        raise ApiError(400, "Control endpoints take a JSON body.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "Control endpoints take a JSON object.")
    try:
        if path == "/_sim/config" and method == "GET":
            return Response.json(app.settings.as_dict())
        if path == "/_sim/config" and method == "POST":
            return Response.json(app.settings.update(payload))
        if path == "/_sim/faults/next" and method == "POST":
            if "fault" not in payload:
                raise ConfigError("'fault' is required")
            item = app.faults.script(
                str(payload["fault"]),
                payload.get("count", 1),
                payload.get("method"),
                payload.get("path"),
            )
            return Response.json({"scripted": item.as_dict(), "pending": app.faults.pending()})
        if path in ("/_sim/faults", "/_sim/faults/next") and method == "GET":
            return Response.json({"pending": app.faults.pending()})
        if path == "/_sim/faults" and method == "DELETE":
            app.faults.clear()
            return Response.json({"pending": []})
        if path == "/_sim/seed" and method == "POST":
            count = payload.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
                raise ConfigError("count must be an integer between 1 and 1000")
            pinned = seed_choices(payload)
            now = time.time()
            jobs = app.store.seed(count, app.settings, **pinned)
            data = [accents.video_json(handler, job, now) for job in jobs]  # as /v1 shows them
            return Response.json({"object": "list", "data": data})
        if path == "/_sim/stats" and method == "GET":
            stats = app.stats.snapshot()
            stats["webhooks"]["events"] = app.store.events_summary()
            return Response.json(stats)
        if path == "/_sim/reset" and method == "POST":
            app.reset()
            return Response.json({"reset": True})
        match = re.match(r"^/_sim/videos/(?P<id>[^/]+)/expire$", path)
        if match and method == "POST":
            video_id = accents.inbound_id(handler, urllib.parse.unquote(match["id"]))
            try:
                job = app.store.expire(video_id, time.time())
            except NotFinished as exc:
                raise ApiError(
                    400,
                    f"Video '{video_id}' is {exc}, not completed.",
                    None,
                    "video_not_completed",
                ) from None
            if job is None:
                raise not_found(video_id)
            return Response.json(accents.video_json(handler, job, time.time()))
    except ConfigError as exc:
        raise ApiError(400, str(exc), None, "invalid_config") from None
    raise ApiError(404, f"Unknown control endpoint ({method} {path}).")


def seed_choices(payload: dict[str, Any]) -> dict[str, str]:
    """Optional "model", "size", "seconds" for /_sim/seed, checked like a create request."""
    model, size, seconds = payload.get("model"), payload.get("size"), payload.get("seconds")
    if model is not None and model not in MODELS:
        raise ConfigError(f"model must be one of {', '.join(MODELS)}")
    if size is not None and size not in model_sizes(model or "sora-2-pro"):
        raise ConfigError(f"size {size!r} is not offered by {model or 'any model'}")
    if size is not None and model is None:
        raise ConfigError("give the model together with the size")
    if seconds is not None and str(seconds) not in SECONDS:
        raise ConfigError(f"seconds must be one of {', '.join(SECONDS)}")
    pinned = {"model": model, "size": size, "seconds": None if seconds is None else str(seconds)}
    return {name: value for name, value in pinned.items() if value is not None}
