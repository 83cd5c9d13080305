"""HTTP front: the Videos API under /v1, fault injection, and the /_sim control endpoints.

Standard library `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive: every response has
an exact Content-Length (binary content is streamed from disk in chunks) so pooled clients
(requests.Session, httpx) can reuse connections.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import io
import json
import math
import re
import secrets
import socket
import sys
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .config import ConfigError, Settings
from .faults import FaultInjector
from .media import VARIANTS, MediaLibrary, free_box_header, padding_bytes
from .stats import Stats
from .store import (
    DEFAULT_MODEL,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    MODELS,
    SECONDS,
    SIZES,
    Job,
    NotFinished,
    Plan,
    Store,
    UnknownCursor,
    model_sizes,
)
from .webhooks import WebhookDispatcher

MAX_PROMPT = 32000
MAX_BODY = 64 * 1024 * 1024
CHUNK = 256 * 1024
REFERENCE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class ApiError(Exception):
    """An error answered with the OpenAI error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_
        self.headers = headers or []

    def response(self) -> Response:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        return Response.json(body, self.status, self.headers)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Streamed content: the file, then (for padded MP4s) a virtual `free` box of zeros.
    file: Path | None = None
    file_size: int = 0
    pad: int = 0
    start: int = 0
    length: int = 0

    @classmethod
    def json(
        cls, obj: object, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        return cls(status, json.dumps(obj).encode("utf-8"), "application/json", headers or [])

    def content_length(self) -> int:
        return self.length if self.file is not None else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        if self.file is None:
            if self.body:
                yield self.body
            return
        pos, end = self.start, self.start + self.length
        if pos < self.file_size:
            with self.file.open("rb") as fh:
                fh.seek(pos)
                while pos < min(end, self.file_size):
                    data = fh.read(min(CHUNK, min(end, self.file_size) - pos))
                    if not data:
                        raise OSError(f"{self.file} shrank while streaming")
                    pos += len(data)
                    yield data
        if pos < end:  # inside the padding box: its header, then zeros
            header = free_box_header(self.pad)
            offset = pos - self.file_size
            if offset < len(header):
                piece = header[offset : offset + end - pos]
                pos += len(piece)
                yield piece
            zeros = bytes(CHUNK)
            while pos < end:
                n = min(CHUNK, end - pos)
                pos += n
                yield zeros[:n]


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    action: str
    per_video: str | None = None
    creates: bool = False


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


class App:
    """Everything the request handlers share."""

    def __init__(self, settings: Settings, store: Store, verbose: bool = False) -> None:
        self.settings = settings
        self.store = store
        self.verbose = verbose
        self.stats = Stats()
        self.faults = FaultInjector(settings)
        self.media = MediaLibrary(store.media_dir)
        self.webhooks = WebhookDispatcher(store, settings, self.stats)

    def reset(self) -> None:
        self.store.reset()
        self.media.forget()
        self.stats.reset()
        self.faults.clear()


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, Handler)


def _not_found(video_id: str) -> ApiError:
    return ApiError(404, f"Video with id '{video_id}' not found.", None, "not_found")


def _invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sora-simulator/1.0"
    timeout = 300  # idle keep-alive connections are closed eventually
    # Headers and body go out in separate writes: with Nagle's algorithm the body then waits
    # for the client's delayed ACK, 40 ms on Linux, on every keep-alive response.
    disable_nagle_algorithm = True
    server: SimServer

    # -- plumbing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_OPTIONS(self) -> None:
        self.dispatch()

    def version_string(self) -> str:
        return self.server_version

    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:
        if self.app.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def dispatch(self) -> None:
        self.request_id = "req_" + secrets.token_hex(16)
        self.started = time.perf_counter()
        self.dropped = False
        split = urllib.parse.urlsplit(self.path)
        path, self.query = split.path, urllib.parse.parse_qs(split.query)
        try:
            self.body = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            self.send(exc.response())
            return
        except (OSError, ValueError):
            self.close_connection = True
            return
        try:
            if path == "/_sim" or path.startswith("/_sim/"):
                response = self.control(self.command, path)
            elif path == "/v1" or path.startswith("/v1/"):
                response = self.api(self.command, path)
            else:
                response = ApiError(404, f"Invalid URL ({self.command} {path})").response()
        except ApiError as exc:
            response = exc.response()
        except Exception as exc:  # a bug: answer like OpenAI's 500, and show it
            traceback.print_exc()
            self.app.stats.note_error(f"{self.command} {path}: {exc!r}")
            response = ApiError(
                500, "The server had an error while processing your request.", type_="server_error"
            ).response()
        if response is not None:
            self.send(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "Request body too large.")
                parts.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "Request body too large.")
        return self.rfile.read(length) if length > 0 else b""

    def send(self, response: Response) -> None:
        if self.dropped:
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(response.content_length()))
            self.send_header("x-request-id", self.request_id)
            elapsed = int((time.perf_counter() - self.started) * 1000)
            self.send_header("openai-processing-ms", str(elapsed))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                for chunk in response.chunks():
                    self.wfile.write(chunk)
        except OSError:
            # The client gave up (e.g. after a `timeout` fault) or the file vanished mid-way
            # (deleted meanwhile): the response cannot be completed, so end the connection.
            self.close_connection = True

    def drop(self) -> None:
        """Abrupt close: no status line, no bytes. The handler must not write afterwards."""
        self.dropped = True
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    # -- /v1 --------------------------------------------------------------------------------

    def api(self, method: str, path: str) -> Response | None:
        app = self.app
        route, params = self._route(method, path)
        if route is None:
            app.stats.request(f"{method} (unknown /v1 path)", None, None)
        else:
            video_id = urllib.parse.unquote(params["id"]) if "id" in params else None
            app.stats.request(route.template, video_id, route.per_video)
        fault = app.faults.pick(method, path, route is not None and route.creates)
        if fault is not None:
            app.stats.fault(fault)
            if fault == "drop":
                self.drop()
                return None
            if fault == "timeout":
                time.sleep(app.settings.hang_seconds)
            elif fault not in ("accept_then_drop", "accept_then_timeout"):
                return self._fault_response(fault)
        try:
            response = self._api_response(method, path, route, params)
        except ApiError as exc:
            response = exc.response()
        if fault == "accept_then_drop":
            self.drop()
            return None
        if fault == "accept_then_timeout":
            time.sleep(app.settings.hang_seconds)
        return response

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        lookup = "GET" if method == "HEAD" else method
        for route in ROUTES:
            match = route.pattern.match(path)
            if match and route.method == lookup:
                return route, match.groupdict()
        return None, {}

    def _fault_response(self, fault: str) -> Response:
        settings = self.app.settings
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

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization", "")
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
        expected = self.app.settings.api_key
        if expected is not None and not secrets.compare_digest(key, expected):
            shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
            raise ApiError(401, f"Incorrect API key provided: {shown}.", None, "invalid_api_key")

    def _api_response(
        self, method: str, path: str, route: Route | None, params: dict[str, str]
    ) -> Response:
        self._authenticate()
        if route is None:
            raise ApiError(404, f"Invalid URL ({method} {path})")
        handler: Callable[..., Response] = getattr(self, f"api_{route.action}")
        if "id" in params:
            return handler(urllib.parse.unquote(params["id"]))
        return handler()

    def _idempotency(self, path: str) -> tuple[str, str] | None:
        key = self.headers.get("Idempotency-Key")
        if key is None or not key.strip():
            return None
        if len(key) > 255:
            raise _invalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters.")
        return path, key.strip()

    def _created(self, job: Job, created: bool) -> Response:
        if created:
            self.app.stats.job_created()
        headers = [] if created else [("idempotent-replayed", "true")]
        return Response.json(job.to_api(time.time()), 200, headers)

    def api_create(self) -> Response:
        fields, files = self._form({"prompt", "model", "seconds", "size", "input_reference"})
        prompt = _prompt(fields.get("prompt"))
        model = fields.get("model")
        model = DEFAULT_MODEL if model is None else model  # JSON null = not given
        if not isinstance(model, str):
            raise _invalid("model", "Invalid type for 'model': expected a string.", "invalid_type")
        if model not in MODELS:
            raise _invalid(
                "model", f"Invalid value: '{model}'. Supported values are: {_choices(MODELS)}."
            )
        seconds = fields.get("seconds")
        seconds = DEFAULT_SECONDS if seconds is None else seconds  # JSON null = not given
        if not isinstance(seconds, str):
            raise _invalid(
                "seconds",
                f"Invalid type for 'seconds': expected one of {_choices(SECONDS)} (a string).",
                "invalid_type",
            )
        if seconds not in SECONDS:
            raise _invalid(
                "seconds", f"Invalid value: '{seconds}'. Supported values are: {_choices(SECONDS)}."
            )
        size = fields.get("size")
        size = DEFAULT_SIZE if size is None else size  # JSON null = not given
        if not isinstance(size, str):
            raise _invalid("size", "Invalid type for 'size': expected a string.", "invalid_type")
        if size not in SIZES:
            raise _invalid(
                "size", f"Invalid value: '{size}'. Supported values are: {_choices(SIZES)}."
            )
        if size not in model_sizes(model):
            raise _invalid(
                "size",
                f"Invalid size '{size}' for model '{model}'. Supported "
                f"sizes for this model are: {_choices(model_sizes(model))}.",
            )
        reference = self._reference(fields, files, size)
        job, created = self.app.store.create(
            model=model,
            prompt=prompt,
            size=size,
            seconds=seconds,
            plan=Plan.draw(self.app.settings, seconds),
            reference=reference,
            idempotency=self._idempotency("/v1/videos"),
        )
        return self._created(job, created)

    def api_remix(self, video_id: str) -> Response:
        fields, _ = self._form({"prompt"}, allow_files=False)
        prompt = _prompt(fields.get("prompt"))
        now = time.time()
        source = self.app.store.get(video_id)
        if source is None:
            raise _not_found(video_id)
        status = source.state(now).status
        if status != "completed":
            raise ApiError(
                400,
                f"Video '{video_id}' is {status}; only completed videos can be remixed.",
                None,
                "video_not_completed",
            )
        # A remix keeps the source's model, length and size (what responses show in practice).
        job, created = self.app.store.create(
            model=source.model,
            prompt=prompt,
            size=source.size,
            seconds=source.seconds,
            plan=Plan.draw(self.app.settings, source.seconds),
            remixed_from=source.id,
            reference_from=source.reference,
            idempotency=self._idempotency(f"/v1/videos/{video_id}/remix"),
        )
        return self._created(job, created)

    def api_retrieve(self, video_id: str) -> Response:
        job = self.app.store.get(video_id)
        if job is None:
            raise _not_found(video_id)
        now = time.time()
        headers = []
        if job.state(now).status in ("queued", "in_progress"):
            # Tell pollers (the SDK honours it) how often polling is useful at this speed.
            poll_ms = max(50, min(10000, int(job.duration * 1000 / 20)))
            headers.append(("openai-poll-after-ms", str(poll_ms)))
        return Response.json(job.to_api(now), 200, headers)

    def api_list(self) -> Response:
        after = self._query("after")
        order = self._query("order") or "desc"
        if order not in ("asc", "desc"):
            raise _invalid(
                "order", f"Invalid value: '{order}'. Supported values are: 'asc', 'desc'."
            )
        raw_limit = self._query("limit")
        try:
            limit = 20 if raw_limit is None else int(raw_limit)
        except ValueError:
            raise _invalid(
                "limit", f"Invalid 'limit': expected an integer, got '{raw_limit}'.", "invalid_type"
            ) from None
        if not 1 <= limit <= 100:
            raise _invalid(
                "limit", f"Invalid 'limit': {limit}. Expected a value between 1 and 100."
            )
        try:
            jobs, has_more = self.app.store.list(after=after or None, limit=limit, order=order)
        except UnknownCursor:
            raise _invalid("after", f"Invalid 'after': no video with id '{after}'.") from None
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

    def api_delete(self, video_id: str) -> Response:
        try:
            job = self.app.store.delete(video_id, time.time())
        except NotFinished as exc:
            raise ApiError(
                400,
                f"Video '{video_id}' is {exc}; only completed or failed videos can be deleted.",
                None,
                "video_not_finished",
            ) from None
        if job is None:
            raise _not_found(video_id)
        return Response.json({"id": video_id, "object": "video.deleted", "deleted": True})

    def api_content(self, video_id: str) -> Response:
        variant = self._query("variant") or "video"
        job = self.app.store.get(video_id)
        if job is None:
            raise _not_found(video_id)
        if variant not in VARIANTS:
            raise _invalid(
                "variant",
                f"Invalid value: '{variant}'. Supported values are: {_choices(tuple(VARIANTS))}.",
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
        store = self.app.store
        reference = store.reference_dir / job.reference if job.reference else None
        path = self.app.media.ensure(
            job.id,
            variant,
            prompt=job.prompt,
            size=job.size,
            seconds=int(job.seconds),
            label=f"{job.model}  {job.size}  {job.seconds}s",
            reference=reference,
            fps=int(self.app.settings.fps),
        )
        file_size = path.stat().st_size
        pad = 0
        if variant == "video":
            pad = (
                job.pad_bytes
                if job.pad_bytes is not None
                else store.set_pad_bytes(job.id, padding_bytes(self.app.settings.pad_video_mb))
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
        range_header = self.headers.get("Range")
        status = 200
        if range_header:
            parsed = _parse_range(range_header, total)
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

    # -- request parsing --------------------------------------------------------------------

    def _query(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def _form(
        self, allowed: set[str], allow_files: bool = True
    ) -> tuple[dict[str, Any], dict[str, Upload]]:
        """Body fields from JSON, multipart/form-data or urlencoded; unknown fields are 400."""
        content_type = self.headers.get("Content-Type", "")
        media_type = content_type.split(";")[0].strip().lower()
        files: dict[str, Upload] = {}
        if not self.body.strip() and media_type != "multipart/form-data":
            fields: dict[str, Any] = {}
        elif media_type == "application/json" or (
            not media_type and self.body.lstrip().startswith(b"{")
        ):
            try:
                parsed = json.loads(self.body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(
                    400,
                    "We could not parse the JSON body of your request. (HINT: "
                    "This likely means you aren't using your HTTP library correctly."
                    ")",
                    None,
                    "invalid_json",
                ) from None
            if not isinstance(parsed, dict):
                raise ApiError(400, "The request body must be a JSON object.", None, "invalid_json")
            fields = parsed
        elif media_type == "multipart/form-data":
            fields, files = _parse_multipart(self.body, content_type)
        elif media_type == "application/x-www-form-urlencoded":
            pairs = urllib.parse.parse_qsl(
                self.body.decode("utf-8", "replace"), keep_blank_values=True
            )
            fields = dict(pairs)
        else:
            raise ApiError(
                400,
                f"Unsupported Content-Type '{media_type}'. Use "
                "multipart/form-data or application/json.",
                None,
                "unsupported_content_type",
            )
        # Flattened object fields from form encodings, e.g. input_reference[image_url].
        for name in list(fields):
            outer, bracket, inner = name.partition("[")
            if bracket and outer in allowed and inner.endswith("]"):
                nested = fields.setdefault(outer, {})
                if isinstance(nested, dict):
                    nested[inner[:-1]] = fields.pop(name)
        unknown = [name for name in [*fields, *files] if name not in allowed]
        if unknown:
            raise ApiError(
                400,
                f"Unrecognized request argument supplied: {unknown[0]}",
                unknown[0],
                "unknown_parameter",
            )
        if files and not allow_files:
            name = next(iter(files))
            raise _invalid(name, f"'{name}' must not be a file.")
        return fields, files

    def _reference(
        self, fields: dict[str, Any], files: dict[str, Upload], size: str
    ) -> tuple[bytes, str] | None:
        """Validate input_reference; returns (image bytes, extension) to store, if any.

        An `{"image_url": "https://..."}` or `{"file_id": ...}` reference cannot be fetched
        offline: it is accepted as given and the clip is drawn without it.
        """
        upload = files.get("input_reference")
        if upload is not None:
            return _check_image(upload.data, size)
        value = fields.get("input_reference")
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _invalid(
                    "input_reference",
                    "input_reference must be a file upload or an object with image_url or file_id.",
                ) from None
        if not isinstance(value, dict):
            raise _invalid(
                "input_reference",
                "input_reference must be a file upload or an object with image_url or file_id.",
                "invalid_type",
            )
        given = [k for k in ("image_url", "file_id") if value.get(k)]
        extra = [k for k in value if k not in ("image_url", "file_id")]
        if len(given) != 1 or extra:
            raise _invalid(
                "input_reference",
                "input_reference must have exactly one of 'image_url' or 'file_id'.",
            )
        url = value.get("image_url")
        if isinstance(url, str) and url.startswith("data:"):
            header, _, payload = url.partition(",")
            if ";base64" not in header:
                raise _invalid("input_reference", "image_url data URLs must be base64.")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("input_reference", "image_url is not valid base64.") from None
            return _check_image(data, size)
        if not isinstance(value[given[0]], str):
            raise _invalid("input_reference", f"'{given[0]}' must be a string.", "invalid_type")
        return None

    # -- /_sim -------------------------------------------------------------------------------

    def control(self, method: str, path: str) -> Response:
        app = self.app
        try:
            payload = json.loads(self.body) if self.body.strip() else {}
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
                pinned = _seed_choices(payload)
                now = time.time()
                jobs = app.store.seed(count, app.settings, **pinned)
                return Response.json({"object": "list", "data": [j.to_api(now) for j in jobs]})
            if path == "/_sim/stats" and method == "GET":
                stats = app.stats.snapshot()
                stats["webhooks"]["events"] = app.store.events_summary()
                return Response.json(stats)
            if path == "/_sim/reset" and method == "POST":
                app.reset()
                return Response.json({"reset": True})
            match = re.match(r"^/_sim/videos/(?P<id>[^/]+)/expire$", path)
            if match and method == "POST":
                video_id = urllib.parse.unquote(match["id"])
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
                    raise _not_found(video_id)
                return Response.json(job.to_api(time.time()))
        except ConfigError as exc:
            raise ApiError(400, str(exc), None, "invalid_config") from None
        raise ApiError(404, f"Unknown control endpoint ({method} {path}).")


def _prompt(value: object) -> str:
    if value is None:
        raise _invalid(
            "prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter"
        )
    if not isinstance(value, str):
        raise _invalid("prompt", "Invalid type for 'prompt': expected a string.", "invalid_type")
    if not value.strip():
        raise _invalid(
            "prompt",
            "Invalid 'prompt': string too short. Expected a string with "
            "minimum length 1, but got an empty string instead.",
            "string_below_min_length",
        )
    if len(value) > MAX_PROMPT:
        raise _invalid(
            "prompt",
            "Invalid 'prompt': string too long. Expected a string with "
            f"maximum length {MAX_PROMPT}, but got a string with length "
            f"{len(value)} instead.",
            "string_above_max_length",
        )
    return value


def _check_image(data: bytes, size: str) -> tuple[bytes, str]:
    width, height = (int(n) for n in size.split("x"))
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, actual = img.format, img.size
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _invalid(
            "input_reference",
            "Invalid input_reference: expected an image/jpeg, image/png or image/webp file.",
            "invalid_image",
        ) from None
    if fmt not in REFERENCE_FORMATS:
        raise _invalid(
            "input_reference",
            f"Invalid input_reference: unsupported image format "
            f"{fmt}; expected image/jpeg, image/png or image/webp.",
            "invalid_image_format",
        )
    if actual != (width, height):
        raise _invalid(
            "input_reference",
            "Inpaint image must match the requested width and "
            f"height (got {actual[0]}x{actual[1]}, requested {size}).",
            "invalid_image_size",
        )
    return data, REFERENCE_FORMATS[fmt]


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Minimal RFC 7578 parser (the stdlib `cgi` module is deprecated and gone in 3.13)."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ApiError(
            400, "multipart/form-data body without a boundary.", None, "invalid_multipart"
        )
    fields: dict[str, Any] = {}
    files: dict[str, Upload] = {}
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 2:
        raise ApiError(400, "Malformed multipart/form-data body.", None, "invalid_multipart")
    for section in sections[1:]:
        if section.startswith(b"--"):
            break  # closing delimiter
        if section.startswith(b"\r\n"):
            section = section[2:]
        if section.endswith(b"\r\n"):
            section = section[:-2]
        raw_headers, sep, data = section.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "Malformed multipart/form-data part.", None, "invalid_multipart")
        part = email.message.Message()
        for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part[name.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        if filename is not None:  # a file part, whatever its declared type
            files[name] = Upload(filename, part.get("Content-Type"), data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


def _parse_range(header: str, total: int) -> tuple[int, int] | None:
    """A single `bytes=a-b` / `bytes=a-` / `bytes=-n` range as [start, end); None if invalid."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match[1] and not match[2]) or total == 0:
        return None
    if not match[1]:
        n = int(match[2])
        return (max(0, total - n), total) if n > 0 else None
    start = int(match[1])
    end = int(match[2]) + 1 if match[2] else total
    if start >= total or end <= start:
        return None
    return start, min(end, total)


def _seed_choices(payload: dict[str, Any]) -> dict[str, str]:
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
