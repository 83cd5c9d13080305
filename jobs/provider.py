"""HTTP client for the OpenAI Videos API (the Sora 2 job API) and gateways that copy it.

This is the only module that speaks HTTP to a provider. It imports nothing from `jobs` or
Django, so it can be reused and tested alone. It returns frozen dataclasses and raises only
the `ProviderError` family below, never a bare `requests`/`urllib3` exception.

Retry policy (modelled on the official Python SDK, see shared/reference §3): GET and DELETE
are retried by urllib3's `Retry` on 408/409/429/5xx and on connection errors and read
timeouts, with exponential backoff or the server's `retry-after-ms`/`Retry-After`. POSTs are
never retried here: the worker re-sends them later with the same Idempotency-Key, so exactly
one place decides when a create is repeated.
"""

from __future__ import annotations

import builtins
import email.utils
import functools
import http
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import takewhile
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from typing import Self

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = "remix-dashboard/0.1 (+jobs.provider)"

KNOWN_STATUSES: Final = frozenset({"queued", "in_progress", "completed", "failed"})
TERMINAL_STATUSES: Final = frozenset({"completed", "failed"})

# The statuses the official SDK retries (409 is its "lock timeout"), for idempotent methods only.
RETRY_STATUSES: Final = frozenset({408, 409, 429, 500, 502, 503, 504})
RETRY_METHODS: Final = frozenset({"GET", "DELETE"})

# A POST answered with one of these may still have created the job: 502/504 are a gateway
# saying it lost the upstream's answer, and 409 is "a request with this Idempotency-Key is
# still in flight". Other 5xx mean the server that answered failed the request itself.
POST_OUTCOME_UNKNOWN_STATUSES: Final = frozenset({409, 502, 504})

NO_VIDEOS_API_MESSAGE: Final = "This provider does not offer the Videos API ({} answered 404)"

# Error bodies are read only this far: an HTML error page or a mis-sent video must not be
# loaded into memory just to build an exception message.
ERROR_BODY_LIMIT: Final = 64 * 1024

# Routes as logged and as named in messages: the ids in real paths can be ~500 characters.
ROUTE_COLLECTION: Final = "/videos"
ROUTE_VIDEO: Final = "/videos/{id}"
ROUTE_CONTENT: Final = "/videos/{id}/content"
ROUTE_REMIX: Final = "/videos/{id}/remix"

_EXPIRED_RE: Final = re.compile(r"\bexpir", re.IGNORECASE)


# --- errors ------------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every failure this client raises. `message` is a sentence for a human."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,  # the envelope's own name for it
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.type = type
        self.request_id = request_id
        # Seconds the provider asked us to wait (Retry-After), when it said so. On every class
        # so callers can write `reschedule(after=exc.retry_after)` for any transient error.
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message

    def __repr__(self) -> str:
        return (
            f"{builtins.type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, param={self.param!r}, request_id={self.request_id!r})"
        )


class ProviderUnavailable(ProviderError):
    """Transient: connection error, timeout, 5xx, 408/409, or a body that is not what the API sends.

    `outcome_unknown` is True when a POST may have reached the provider and created a job even
    though no usable answer came back (read timeout, connection dropped after sending, or a
    502/504/409 answer). Re-send it with the same Idempotency-Key; never with a new one.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.outcome_unknown = outcome_unknown


class ProviderRateLimited(ProviderUnavailable):
    """429. `retry_after` (seconds) is set when the provider said how long to wait."""


class ProviderRejected(ProviderError):
    """The provider refused the request (a 4xx other than 408/409/429): do not retry as is."""


class AuthenticationFailed(ProviderRejected):
    """401/403: the API key is wrong, revoked or not allowed to use the Videos API."""


class NotFound(ProviderRejected):
    """404 for one video: it never existed here, or it was deleted."""


class AssetsExpired(ProviderRejected):
    """410, or a 400 saying the assets expired: the files can no longer be downloaded."""


class NoVideosApi(ProviderRejected):
    """404 on the collection itself, or a non-API 404: the base URL is not a Videos API."""


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteVideo:
    """The provider's Video object, parsed leniently (gateways omit and add fields).

    Strings the spec marks required are `str` ("" when a gateway left them out); nullable ones
    are `str | None`. `status` is the provider's raw string, even an unknown one: the service
    layer decides what an unknown status means.
    """

    id: str
    object: str = "video"
    model: str = ""
    status: str = ""
    progress: int = 0
    created_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    prompt: str | None = None
    size: str = ""
    seconds: str = ""
    remixed_from_video_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Not a Video field: the `openai-poll-after-ms` response header in seconds, when the
    # provider sent one (it says how soon another GET is useful; the SDK poller honours it).
    poll_after: float | None = field(default=None, compare=False, repr=False)

    @property
    def is_known_status(self) -> bool:
        return self.status in KNOWN_STATUSES

    @property
    def is_terminal(self) -> bool:
        """True for `completed`/`failed` only; an unknown status is not assumed to be final."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: object) -> RemoteVideo:
        if not isinstance(data, dict):
            raise ProviderUnavailable(
                f"The provider sent a video that is not a JSON object ({_kind(data)})"
            )
        video_id = _text(data.get("id"))
        if not video_id:
            raise ProviderUnavailable("The provider sent a video without an id")
        error = data.get("error")
        error_code = error_message = None
        if isinstance(error, dict):
            error_code, error_message = _text(error.get("code")), _text(error.get("message"))
        elif isinstance(error, str) and error:
            error_message = error
        return cls(
            id=video_id,
            object=_text(data.get("object")) or "video",
            model=_text(data.get("model")) or "",
            status=_text(data.get("status")) or "",
            progress=_progress(data.get("progress")),
            created_at=_timestamp(data.get("created_at")),
            completed_at=_timestamp(data.get("completed_at")),
            expires_at=_timestamp(data.get("expires_at")),
            prompt=_text(data.get("prompt")),
            size=_text(data.get("size")) or "",
            seconds=_text(data.get("seconds")) or "",
            remixed_from_video_id=_text(data.get("remixed_from_video_id")),
            error_code=error_code,
            error_message=error_message,
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class VideoPage:
    data: list[RemoteVideo]
    has_more: bool
    first_id: str | None
    last_id: str | None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    bytes_written: int
    content_type: str | None

    @property
    def bytes(self) -> int:  # docs/architecture.md spells it `DownloadResult(bytes, ...)`
        return self.bytes_written


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What `ProviderClient.check()` learnt: the Videos API answered, and could it list?"""

    can_list: bool  # False: a gateway that needs a model/provider hint to list (LiteLLM)
    message: str
    newest: RemoteVideo | None
    request_id: str | None
    elapsed: float  # seconds


# --- parsing helpers ---------------------------------------------------------------------------


def _kind(value: object) -> str:
    return "null" if value is None else builtins.type(value).__name__


def _text(value: object) -> str | None:
    """A string field; numbers are accepted (seconds: 8 -> "8"), anything else is None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _progress(value: object) -> int:
    number = _number(value)
    if number is None:
        return 0
    return max(0, min(100, round(number)))  # a percentage, whatever a gateway sends


def _timestamp(value: object) -> datetime | None:
    """Unix seconds (int, float or numeric string) or ISO 8601 -> aware UTC datetime."""
    number = _number(value)
    if number is None:
        if isinstance(value, str) and value.strip():
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return None
    if number <= 0:
        return None  # 0 is how some gateways say "not set"; no video dates from 1970
    if number >= 1e11:
        number /= 1000  # milliseconds: 1e11 seconds would be the year 5138
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (ms, float) or `Retry-After` (seconds or a date).

    Same precedence as the official SDK. Unparseable or negative values give None.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None and millis >= 0:
        return millis / 1000
    header = headers.get("retry-after")
    if not header:
        return None
    seconds = _number(header)
    if seconds is not None:
        return seconds if seconds >= 0 else None
    date = email.utils.parsedate_tz(header)
    if date is None:
        return None
    return max(0.0, email.utils.mktime_tz(date) - time.time())


def _quote_id(video_id: str) -> str:
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"video_id must be a non-empty string, not {video_id!r}")
    if video_id.strip(".") == "":
        # "." and ".." survive quoting and are then resolved as path segments by requests and
        # by servers ("/videos/.." is "/"), so they would reach another route. No video has them.
        raise NotFound(f"No video can have the id {video_id!r}")
    return quote(video_id, safe="")


# --- retries -----------------------------------------------------------------------------------


class _VideosRetry(Retry):
    """urllib3 `Retry` with the SDK's timing, `retry-after-ms`, and a ceiling on waits.

    When the provider asks for a longer wait than `retry_after_cap`, this stops retrying and
    lets the response through, so the client raises `ProviderRateLimited(retry_after=...)`
    and the caller reschedules instead of a worker thread sleeping for minutes.
    """

    def __init__(self, *args: Any, retry_after_cap: float = 20.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap

    def new(self, **kw: Any) -> Self:
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        return super().new(**kw)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        # urllib3 reads only integer `Retry-After`; the SDK also honours floats and milliseconds.
        return parse_retry_after(response.headers)

    def get_backoff_time(self) -> float:
        # SDK: min(0.5 * 2^n, 8) s times a jitter factor in (0.75, 1], from the first retry on
        # (urllib3's own formula would retry the first time without any pause).
        history = reversed(self.history)
        attempts = len(builtins.list(takewhile(lambda h: h.redirect_location is None, history)))
        if attempts == 0:
            return 0.0
        backoff = min(self.backoff_factor * 2 ** (attempts - 1), self.backoff_max)
        return backoff * random.uniform(0.75, 1.0)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        path = urlsplit(url or "").path
        if method is not None and not self._is_method_retryable(method):
            # urllib3 would still retry a POST whose connection failed; we never do (see module
            # docstring). MaxRetryError is what requests turns into its usual exceptions.
            raise MaxRetryError(_pool, url, error or ResponseError("not retried")) from error
        if response is not None:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.retry_after_cap:
                logger.info(
                    "Not retrying %s %s: HTTP %s asks to wait %.1f s (cap %.1f s)",
                    method,
                    path,
                    response.status,
                    wait,
                    self.retry_after_cap,
                )
                # With raise_on_status=False urllib3 hands this response back to the client.
                raise MaxRetryError(_pool, url, ResponseError("Retry-After above cap"))
            if str(response.headers.get("x-should-retry", "")).lower() == "false":
                raise MaxRetryError(_pool, url, ResponseError("x-should-retry: false"))
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"HTTP {response.status}" if response is not None else builtins.type(error).__name__
        logger.info(
            "Retrying %s %s after %s (attempt %d, %s retries left)",
            method,
            path,
            cause,
            len(new.history) + 1,
            new.total,
        )
        return new


# --- the client --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def shared_client(
    base_url: str, api_key: str, timeout: tuple[float, float], max_retries: int
) -> ProviderClient:
    """One client per provider (and key) per process, so every call reuses its connection pool.

    A new client per job meant a new TCP (for a real provider, TLS) handshake per status read;
    the tracker makes thousands of those. A changed key or URL is a different cache entry.
    """
    return ProviderClient(base_url, api_key, timeout=timeout, max_retries=max_retries)


class ProviderClient:
    """One provider: a pooled `requests.Session`, safe to share between worker threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5, 30),
        max_retries: int = 2,
        retry_after_cap: float = 20,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_after_cap = retry_after_cap
        # A key read from a file often ends in a newline; requests would then refuse the header
        # with an exception that quotes it, so clean it here and never echo it back.
        api_key = api_key.strip()
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in api_key):
            raise ValueError("The API key contains spaces, control or non-ASCII characters")
        self._api_key = api_key  # never logged, never in repr or messages
        retry = _VideosRetry(
            total=max_retries,
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=0.5,
            backoff_max=8,
            raise_on_status=False,  # the last answer comes back so we can map it to an error
            respect_retry_after_header=True,
            retry_after_cap=retry_after_cap,
        )
        # pool_maxsize: a worker's thread pool shares this session; one connection per thread.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=retry)
        self._session = requests.Session()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = user_agent
        self._session.headers["Accept"] = "application/json"
        if api_key:
            # requests drops this header itself when a redirect leaves the host.
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"ProviderClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- endpoints ---------------------------------------------------------------------------

    def create(
        self,
        prompt: str,
        model: str | None = None,
        seconds: str | int | None = None,
        size: str | None = None,
        input_reference: tuple[str, IO[bytes] | bytes, str] | None = None,
        idempotency_key: str | uuid.UUID | None = None,
    ) -> RemoteVideo:
        """POST /videos as multipart/form-data (the only body the spec lists for create)."""
        fields = {"prompt": prompt, "model": model, "seconds": seconds, "size": size}
        # `(None, value)` makes a plain form field; passing them as `files` keeps the body
        # multipart even without an image.
        parts: list[tuple[str, tuple[str | None, Any] | tuple[str, Any, str]]] = [
            (name, (None, str(value))) for name, value in fields.items() if value is not None
        ]
        if input_reference is not None:
            parts.append(("input_reference", input_reference))
        response = self._request(
            "POST", ROUTE_COLLECTION, "/videos", files=parts, idempotency_key=idempotency_key
        )
        return self._created(response, ROUTE_COLLECTION)

    def remix(
        self, video_id: str, prompt: str, idempotency_key: str | uuid.UUID | None = None
    ) -> RemoteVideo:
        path = f"/videos/{_quote_id(video_id)}/remix"
        response = self._request(
            "POST", ROUTE_REMIX, path, json={"prompt": prompt}, idempotency_key=idempotency_key
        )
        return self._created(response, ROUTE_REMIX)

    def retrieve(self, video_id: str) -> RemoteVideo:
        response = self._request("GET", ROUTE_VIDEO, f"/videos/{_quote_id(video_id)}")
        video = RemoteVideo.from_json(self._json(response, "GET", ROUTE_VIDEO))
        millis = _number(response.headers.get("openai-poll-after-ms"))
        if millis is not None and millis >= 0:
            video = replace(video, poll_after=millis / 1000)
        return video

    def list(self, after: str | None = None, limit: int = 20, order: str = "desc") -> VideoPage:
        params: dict[str, str | int] = {"limit": limit, "order": order}
        if after is not None:
            params["after"] = after
        response = self._request("GET", ROUTE_COLLECTION, "/videos", params=params)
        return self._page(self._json(response, "GET", ROUTE_COLLECTION))

    def iter_all(self, limit: int = 100, order: str = "desc") -> Iterator[RemoteVideo]:
        """Every video, page by page, following `has_more` with `after=<last id>`."""
        seen: set[str] = set()
        after: str | None = None
        while True:
            page = self.list(after=after, limit=limit, order=order)
            for video in page.data:
                if video.id not in seen:  # a page boundary shifting under us repeats items
                    seen.add(video.id)
                    yield video
            cursor = page.last_id or (page.data[-1].id if page.data else None)
            if not page.has_more or cursor is None:
                return
            if cursor == after:
                logger.warning("GET /videos repeated the cursor; stopping the listing there")
                return
            after = cursor

    def delete(self, video_id: str) -> None:
        response = self._request("DELETE", ROUTE_VIDEO, f"/videos/{_quote_id(video_id)}")
        body = self._json(response, "DELETE", ROUTE_VIDEO, allow_empty=True)
        if isinstance(body, dict) and body.get("deleted") is False:
            raise ProviderRejected(
                "The provider answered that the video was not deleted",
                status=response.status_code,
                request_id=_request_id(response),
            )

    def download(
        self, video_id: str, variant: str, dest: BinaryIO, chunk_size: int = 64 * 1024
    ) -> DownloadResult:
        """Stream one asset (`video`, `thumbnail`, `spritesheet`) into `dest`, chunk by chunk.

        Raises `ProviderUnavailable` when the body stops short of Content-Length, so a partial
        file is never mistaken for an archived one. `dest` may hold a partial write then.
        """
        path = f"/videos/{_quote_id(video_id)}/content"
        response = self._request(
            "GET",
            ROUTE_CONTENT,
            path,
            params={"variant": variant},
            stream=True,
            # The SDK's Accept; identity so Content-Length counts the bytes we write.
            headers={"Accept": "application/binary", "Accept-Encoding": "identity"},
        )
        with response:
            content_type = response.headers.get("Content-Type")
            mime = (content_type or "").split(";")[0].strip().lower()
            if mime in ("application/json", "text/html"):
                raise ProviderUnavailable(
                    f"The provider answered GET {ROUTE_CONTENT} with {mime} instead of media",
                    status=response.status_code,
                    request_id=_request_id(response),
                )
            expected = _number(response.headers.get("Content-Length"))
            encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
            written = 0
            chunks = response.iter_content(chunk_size)
            while True:
                # Only network errors become ProviderUnavailable; a failing `dest.write` (disk
                # full) is the caller's problem and propagates as it is.
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except (requests.RequestException, Urllib3Error) as exc:
                    raise ProviderUnavailable(
                        f"The {variant} download broke off after {written} bytes"
                        + (f" of {int(expected)}" if expected is not None else ""),
                        status=response.status_code,
                        request_id=_request_id(response),
                    ) from exc
                if chunk:
                    dest.write(chunk)
                    written += len(chunk)
            if expected is not None and not encoded and written != expected:
                raise ProviderUnavailable(
                    f"The {variant} download ended after {written} of {int(expected)} bytes",
                    status=response.status_code,
                    request_id=_request_id(response),
                )
        return DownloadResult(bytes_written=written, content_type=content_type)

    def check(self) -> CheckResult:
        """GET /videos?limit=1: does this base URL and key reach a Videos API?

        Raises the typed errors (`NoVideosApi`, `AuthenticationFailed`, `ProviderUnavailable`).
        A 400/422 on the list still proves an OpenAI-shaped Videos API that accepted the key;
        some gateways (LiteLLM) refuse to list without a routing hint, so that is reported as
        `can_list=False` rather than as a failure.
        """
        started = time.monotonic()
        try:
            response = self._request(
                "GET", ROUTE_COLLECTION, "/videos", params={"limit": 1, "order": "desc"}
            )
        except ProviderRejected as exc:
            if builtins.type(exc) is not ProviderRejected or exc.status not in (400, 422):
                raise
            return CheckResult(
                can_list=False,
                message=f"The Videos API answered, but it cannot list videos: {exc.message}",
                newest=None,
                request_id=exc.request_id,
                elapsed=time.monotonic() - started,
            )
        page = self._page(self._json(response, "GET", ROUTE_COLLECTION))
        elapsed = time.monotonic() - started
        newest = page.data[0] if page.data else None
        found = "it has videos" if newest else "it has no videos yet"
        return CheckResult(
            can_list=True,
            message=f"The Videos API answered in {elapsed:.2f} s; {found}",
            newest=newest,
            request_id=_request_id(response),
            elapsed=elapsed,
        )

    # --- plumbing ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        route: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        idempotency_key: str | uuid.UUID | None = None,
    ) -> requests.Response:
        headers = dict(headers or {})
        if method == "POST":
            headers["Idempotency-Key"] = str(idempotency_key or uuid.uuid4())
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                files=files,
                headers=headers,
                timeout=self.timeout,
                stream=stream,
                # A redirected POST would be replayed as a GET by requests; a GET may follow
                # (e.g. content served from a CDN; the Authorization header is then dropped).
                allow_redirects=method != "POST",
            )
        except (requests.RequestException, Urllib3Error) as exc:
            raise self._transport_error(method, route, exc) from exc
        if 200 <= response.status_code < 300:
            return response
        with response:
            raise self._status_error(method, route, response)

    def _transport_error(self, method: str, route: str, exc: Exception) -> ProviderUnavailable:
        causes = _causes(exc)
        host = urlsplit(self.base_url).netloc
        reason = next((str(c) for c in reversed(causes) if isinstance(c, OSError) and str(c)), None)
        suffix = f": {reason}" if reason else ""
        # Connect errors come first: a retried GET that ends on one carries the earlier
        # read errors in its history, but nothing was sent on the last try.
        if any(isinstance(c, ConnectTimeoutError | requests.ConnectTimeout) for c in causes):
            # Includes NewConnectionError (refused, DNS): the request was never sent.
            message, sent = f"Could not connect to the provider at {host}{suffix}", False
        elif any(isinstance(c, Urllib3SSLError | requests.exceptions.SSLError) for c in causes):
            message, sent = f"The TLS handshake with {host} failed{suffix}", False
        elif any(isinstance(c, ReadTimeoutError | requests.ReadTimeout) for c in causes):
            message = f"The provider did not answer {method} {route} within {self.timeout[1]} s"
            sent = True
        elif any(isinstance(c, ProtocolError | ConnectionError) for c in causes):
            message = f"The provider closed the connection during {method} {route}{suffix}"
            sent = True
        else:
            # Unclassified: for a POST, assume the worst (it may have been sent).
            message, sent = f"The request {method} {route} failed{suffix}", True
        # Only a POST creates anything; GET/DELETE are idempotent, so their outcome never matters.
        return ProviderUnavailable(self._redact(message), outcome_unknown=method == "POST" and sent)

    def _status_error(self, method: str, route: str, response: requests.Response) -> ProviderError:
        status = response.status_code
        request_id = _request_id(response)
        retry_after = parse_retry_after(response.headers)
        envelope = _error_envelope(_read_limited(response, ERROR_BODY_LIMIT))
        provider_message = self._redact(envelope.get("message") or "") if envelope else ""
        details: dict[str, Any] = {
            "status": status,
            "request_id": request_id,
            "retry_after": retry_after,
            "code": envelope.get("code") if envelope else None,
            "param": envelope.get("param") if envelope else None,
            "type": envelope.get("type") if envelope else None,
        }
        phrase = _phrase(status)

        def say(default: str) -> str:
            return provider_message or default

        if status == 429:
            wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return ProviderRateLimited(
                say(f"The provider is rate limiting requests (HTTP 429){wait}"), **details
            )
        if status in (408, 409) or status >= 500:
            return ProviderUnavailable(
                say(f"The provider failed to handle {method} {route} (HTTP {status}{phrase})"),
                outcome_unknown=method == "POST" and status in POST_OUTCOME_UNKNOWN_STATUSES,
                **details,
            )
        if status in (401, 403):
            default = (
                "The provider rejected the API key (HTTP 401)"
                if status == 401
                else "The API key is not allowed to use the Videos API (HTTP 403)"
            )
            return AuthenticationFailed(say(default), **details)
        if status == 404:
            # The collection path always exists on a Videos API; elsewhere, a 404 that is not
            # the API's error envelope (an HTML page, a framework's {"detail": ...}) comes from
            # something that is not a Videos API at all.
            # OpenAI itself (and the simulator) answers an unknown route with the envelope
            # and "Invalid URL (GET /videos/x)", e.g. for a base URL missing its /v1.
            if (
                route == ROUTE_COLLECTION
                or envelope is None
                or provider_message.startswith("Invalid URL")
            ):
                return NoVideosApi(NO_VIDEOS_API_MESSAGE.format(f"{method} {route}"), **details)
            return NotFound(
                say("No video with this id exists at the provider (HTTP 404)"), **details
            )
        if status == 410 or (
            status == 400 and route != ROUTE_COLLECTION and _says_expired(envelope)
        ):
            # The reference expects a 400 "...expired" for expired assets; 410 is the HTTP way
            # (and what the simulator sends).
            return AssetsExpired(
                say(f"The video's assets have expired at the provider (HTTP {status})"),
                **details,
            )
        if 400 <= status < 500:
            return ProviderRejected(
                say(f"The provider rejected {method} {route} (HTTP {status}{phrase})"), **details
            )
        # 1xx/3xx: a redirected POST, or a base URL that points somewhere else.
        return ProviderRejected(
            f"The provider answered {method} {route} with HTTP {status}{phrase}; "
            "check the base URL",
            **details,
        )

    def _json(
        self, response: requests.Response, method: str, route: str, *, allow_empty: bool = False
    ) -> Any:
        body = response.content
        if allow_empty and not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            mime = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise ProviderUnavailable(
                f"The provider answered {method} {route} with a body that is not JSON ({mime})",
                status=response.status_code,
                request_id=_request_id(response),
            ) from None

    def _created(self, response: requests.Response, route: str) -> RemoteVideo:
        try:
            return RemoteVideo.from_json(self._json(response, "POST", route))
        except ProviderUnavailable as exc:
            # The provider said 2xx, so the job probably exists, but we cannot tell its id.
            exc.outcome_unknown = True
            exc.status = exc.status or response.status_code
            exc.request_id = exc.request_id or _request_id(response)
            raise

    def _page(self, body: Any) -> VideoPage:
        if not isinstance(body, dict) or not isinstance(body.get("data"), builtins.list):
            raise ProviderUnavailable(
                f"The provider's GET {ROUTE_COLLECTION} answer is not a list of videos"
            )
        videos: builtins.list[RemoteVideo] = []
        for item in body["data"]:
            try:
                videos.append(RemoteVideo.from_json(item))
            except ProviderUnavailable as exc:
                # One broken item must not hide the others from an import.
                logger.warning("Skipping a listed video: %s", exc.message)
        has_more = body.get("has_more")
        return VideoPage(
            data=videos,
            has_more=has_more is True or str(has_more).lower() == "true",
            first_id=_text(body.get("first_id")) or (videos[0].id if videos else None),
            last_id=_text(body.get("last_id")) or (videos[-1].id if videos else None),
        )

    def _redact(self, text: str) -> str:
        # A gateway might echo the key in a message; short keys would mangle every sentence
        # and are not worth hiding from text that came from the same provider anyway.
        if len(self._api_key) >= 6:
            return text.replace(self._api_key, "[redacted]")
        return text


def _causes(exc: BaseException) -> builtins.list[BaseException]:
    """`exc` and everything it wraps (requests -> MaxRetryError.reason -> urllib3 -> OSError)."""
    found: builtins.list[BaseException] = []
    todo: builtins.list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if current in found:
            continue
        found.append(current)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
    return found


def _says_expired(envelope: dict[str, str | None] | None) -> bool:
    if not envelope:
        return False
    # The code is machine-readable when present; the message may quote an id like "expiry-1".
    text = envelope.get("code") or envelope.get("message") or ""
    return bool(_EXPIRED_RE.search(text.replace("_", " ")))


def _request_id(response: requests.Response) -> str | None:
    return response.headers.get("x-request-id") or response.headers.get("request-id")


def _phrase(status: int) -> str:
    try:
        return f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        return ""


def _read_limited(response: requests.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body, streamed or not; a broken body gives what arrived."""
    buffer = bytearray()
    try:
        for chunk in response.iter_content(8192):
            buffer += chunk
            if len(buffer) >= limit:
                break
    except (requests.RequestException, Urllib3Error):
        pass
    return bytes(buffer[:limit])


def _error_envelope(body: bytes) -> dict[str, str | None] | None:
    """`{"error": {message, type, param, code}}` -> its fields; None if the body is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, str):  # some gateways flatten it to a string
        return {"message": error, "type": None, "param": None, "code": None}
    if not isinstance(error, dict):
        return None
    return {key: _text(error.get(key)) for key in ("message", "type", "param", "code")}
