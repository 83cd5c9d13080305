"""The provider's failures as one exception family, and how HTTP answers map onto it.

Callers see only these classes, never a bare `requests`/`urllib3` exception.
"""

from __future__ import annotations

import builtins
import http
import json
import re
from collections.abc import Callable
from typing import Any, Final

import requests
from urllib3.exceptions import ConnectTimeoutError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError

from jobs.provider.fields import as_text
from jobs.provider.retry import parse_retry_after

# Routes as logged and as named in messages: the ids in real paths can be ~500 characters.
ROUTE_COLLECTION: Final = "/videos"
ROUTE_VIDEO: Final = "/videos/{id}"
ROUTE_CONTENT: Final = "/videos/{id}/content"
ROUTE_REMIX: Final = "/videos/{id}/remix"
ROUTE_EDITS: Final = "/videos/edits"
ROUTE_EXTENSIONS: Final = "/videos/extensions"
ROUTE_MODELS: Final = "/models"
ROUTE_VIDEO_MODELS: Final = "/videos/models"  # OpenRouter's catalog of video models

# A POST answered with one of these may still have created the job: 502/504 are a gateway
# saying it lost the upstream's answer, and 409 is "a request with this Idempotency-Key is
# still in flight". Other 5xx mean the server that answered failed the request itself.
POST_OUTCOME_UNKNOWN_STATUSES: Final = frozenset({409, 502, 504})

NO_VIDEOS_API_MESSAGE: Final = "This provider does not offer the Videos API ({} answered 404)"

# Error bodies are read only this far: an HTML error page or a mis-sent video must not be
# loaded into memory just to build an exception message.
ERROR_BODY_LIMIT: Final = 64 * 1024

_EXPIRED_RE: Final = re.compile(r"\bexpir", re.IGNORECASE)
# new-api: 400 "Task is not completed yet"; the simulator: 400 video_not_ready, "content is only
# available for completed videos"; others say "not ready" or "still processing".
_NOT_READY_RE: Final = re.compile(
    r"not[ _](?:yet[ _])?(?:completed|complete|ready|finished)|still[ _](?:processing|running|"
    r"in[ _]progress|queued)|only available for completed",
    re.IGNORECASE,
)


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


class InvalidAnswer(ProviderError):
    """The provider answered, but with something this dashboard will not use: a body over its
    size cap, a field longer than its column, a NUL, media of the wrong type, a redirect to a
    forbidden address. Not transient (asking again gets the same answer), so never retried as
    if it were; after a POST the job may well exist at the provider, so never re-sent either.
    """


class NoVideosApi(ProviderRejected):
    """404 on the collection itself, or a non-API 404: the base URL is not a Videos API."""


class NotOffered(ProviderRejected):
    """The provider's dialect has no such endpoint (OpenRouter: list, remix, edit, delete, image
    variants), or cannot take this input; known beforehand, so nothing was sent."""


class NotReady(ProviderUnavailable):
    """The content endpoint said the job is not completed yet (new-api's 400 "Task is not
    completed yet"): try again later; not a failed download."""


class VariantUnsupported(ProviderError):
    """The provider does not serve this thumbnail/spritesheet: 404/400/415 on that variant, or
    an answer that is not an image (LiteLLM sends the MP4 again, as video/mp4). Raised before the
    body is read, so the wrong bytes are never downloaded. Never raised for the video itself."""


def transport_error(
    method: str,
    route: str,
    exc: Exception,
    *,
    host: str,
    read_timeout: float,
    redact: Callable[[str], str],
) -> ProviderUnavailable:
    """A connection failure as `ProviderUnavailable`, saying whether a POST may have landed."""
    causes = _causes(exc)
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
        message = f"The provider did not answer {method} {route} within {read_timeout:g} s"
        sent = True
    elif any(isinstance(c, ProtocolError | ConnectionError) for c in causes):
        message = f"The provider closed the connection during {method} {route}{suffix}"
        sent = True
    else:
        # Unclassified: for a POST, assume the worst (it may have been sent).
        message, sent = f"The request {method} {route} failed{suffix}", True
    # Only a POST creates anything; GET/DELETE are idempotent, so their outcome never matters.
    return ProviderUnavailable(redact(message), outcome_unknown=method == "POST" and sent)


def status_error(
    method: str, route: str, response: requests.Response, *, redact: Callable[[str], str]
) -> ProviderError:
    """A non-2xx answer as the matching `ProviderError` subclass, with the envelope's details."""
    status = response.status_code
    req_id = request_id(response)
    retry_after = parse_retry_after(response.headers)
    raw_body = read_limited(response, ERROR_BODY_LIMIT)
    envelope = error_envelope(raw_body)
    provider_message = redact(envelope.get("message") or "") if envelope else ""
    details: dict[str, Any] = {
        "status": status,
        "request_id": req_id,
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
        return NotFound(say("No video with this id exists at the provider (HTTP 404)"), **details)
    if status == 400 and route == ROUTE_CONTENT and _says_not_ready(envelope, raw_body):
        return NotReady(
            say("The provider says the video is not completed yet; try again later (HTTP 400)"),
            **details,
        )
    if status == 410 or (status == 400 and route != ROUTE_COLLECTION and _says_expired(envelope)):
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
        f"The provider answered {method} {route} with HTTP {status}{phrase}; check the base URL",
        **details,
    )


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


def _says_not_ready(envelope: dict[str, str | None] | None, body: bytes) -> bool:
    if envelope:
        text = f"{envelope.get('code') or ''} {envelope.get('message') or ''}"
    else:  # some gateways answer {"message": ...} or plain text
        text = body[:2000].decode("utf-8", "replace")
    return bool(_NOT_READY_RE.search(text))


def request_id(response: requests.Response) -> str | None:
    return response.headers.get("x-request-id") or response.headers.get("request-id")


def _phrase(status: int) -> str:
    try:
        return f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        return ""


def read_limited(response: requests.Response, limit: int) -> bytes:
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


def error_envelope(body: bytes) -> dict[str, str | None] | None:
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
    return {key: as_text(error.get(key)) for key in ("message", "type", "param", "code")}
