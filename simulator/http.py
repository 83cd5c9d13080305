"""HTTP plumbing: the server, the request handler, responses, errors, routes and body parsing.

Standard library `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive: every response has
an exact Content-Length (binary content is streamed from disk in chunks) so pooled clients
(requests.Session, httpx) can reuse connections.

The endpoints themselves are elsewhere (`api` for /v1, `control` for /_sim): the server is
given them as mounts, a path prefix each, and knows nothing of what they do.
"""

from __future__ import annotations

import email.message
import json
import re
import secrets
import socket
import sys
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .app import App
from .media import free_box_header

MAX_BODY = 64 * 1024 * 1024
CHUNK = 256 * 1024


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


def invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def not_found(video_id: str) -> ApiError:
    return ApiError(404, f"Video with id '{video_id}' not found.", None, "not_found")


def choices(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


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
    # The `truncate` fault: send only this many bytes, without Content-Length, then close.
    truncate_at: int | None = None

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


def match_route(
    routes: tuple[Route, ...], method: str, path: str
) -> tuple[Route | None, dict[str, str]]:
    """The route for `method path` (HEAD is answered as GET) and its path parameters."""
    lookup = "GET" if method == "HEAD" else method
    for route in routes:
        match = route.pattern.match(path)
        if match and route.method == lookup:
            return route, match.groupdict()
    return None, {}


def allowed_methods(routes: tuple[Route, ...], path: str) -> list[str]:
    """The methods some route serves at `path` (for a 405's Allow header); [] if none does."""
    methods = {route.method for route in routes if route.pattern.match(path)}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


# An endpoint answers every request under its mount point (`handler.command`, the path); None
# means it has answered already, or dropped the connection.
type Endpoint = Callable[[Handler, str, str], Response | None]


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, mounts: Mapping[str, Endpoint]) -> None:
        """`mounts`: path prefix (e.g. "/v1") -> the endpoint serving it and everything below."""
        self.app = app
        self.mounts = dict(mounts)
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sora-simulator/1.0"
    timeout = 300  # idle keep-alive connections are closed eventually
    # Headers and body go out in separate writes: with Nagle's algorithm the body then waits
    # for the client's delayed ACK, 40 ms on Linux, on every keep-alive response.
    disable_nagle_algorithm = True
    server: SimServer
    # Set for each request by dispatch().
    request_id: str
    started: float
    dropped: bool
    query: dict[str, list[str]]
    body: bytes

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

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute

        def __getattr__(self, name):
            # TRACE, QUERY and any other method: answered by the endpoints like the rest (a
            # JSON 404 or 405), not with BaseHTTPRequestHandler's HTML 501.
            if name.startswith("do_"):
                return self.dispatch
            raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (a bad request line, headers too long...) in the JSON envelope too."""
        self.request_id = "req_" + secrets.token_hex(16)
        self.started = time.perf_counter()
        self.dropped = False
        self.close_connection = True
        # With a status line even when the request line was too broken to name a version.
        self.request_version = "HTTP/1.1"
        short = self.responses.get(code, ("Error", ""))[0]
        type_ = "server_error" if code >= 500 else "invalid_request_error"
        self.send(ApiError(code, message or short, type_=type_).response())

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
        # Blank values kept: `?variant=` is a wrong value to refuse, not an absent one.
        path = split.path
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
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
            for prefix, endpoint in self.server.mounts.items():
                if path == prefix or path.startswith(prefix + "/"):
                    response = endpoint(self, self.command, path)
                    break
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
            truncated = response.truncate_at is not None
            if truncated:
                self.close_connection = True  # the close is what ends the body
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            if not truncated:
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
                left = response.truncate_at
                for chunk in response.chunks():
                    if left is not None:
                        chunk, left = chunk[:left], left - len(chunk[:left])
                    self.wfile.write(chunk)
                    if left == 0:
                        break
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

    # -- request parsing --------------------------------------------------------------------

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def form(
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
            fields, files = parse_multipart(self.body, content_type)
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
            raise invalid(name, f"'{name}' must not be a file.")
        return fields, files


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], dict[str, Upload]]:
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
            header_name, colon, value = line.partition(":")
            if colon:
                part[header_name.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        part_type = (part.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        # A file part, whatever its declared type; and an image (or any bytes that are not
        # text) sent without a filename, as clients that send a binary field bare do.
        if filename is not None or part_type.startswith("image/") or text is None:
            files[name] = Upload(filename, part.get("Content-Type"), data)
        else:
            fields[name] = text
    return fields, files


def parse_range(header: str, total: int) -> tuple[int, int] | None:
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
