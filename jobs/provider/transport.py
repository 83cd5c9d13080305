"""The wire under `ProviderClient`: one pooled session, a deadline per call, bounded bodies.

A provider is untrusted input. Every call here runs under a total deadline (`deadline`),
bodies are read only up to a cap (counted as they arrive: Content-Length may be missing or
lie), redirects are never followed (content downloads follow them by hand, in `media`), and
the API key is scrubbed from anything the provider says back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from jobs.provider.deadline import Deadline, DeadlineExceeded, GuardedAdapter
from jobs.provider.deadline import deadline as deadline_guard
from jobs.provider.errors import (
    InvalidAnswer,
    ProviderUnavailable,
    request_id,
    status_error,
    transport_error,
)
from jobs.provider.fields import as_number
from jobs.provider.retry import RETRY_METHODS, RETRY_STATUSES, VideosRetry
from jobs.provider.schema import RemoteVideo

REDACTED: Final = "[redacted]"
# Any run of this many characters of the key counts as (part of) the key when echoed back.
KEY_PIECE: Final = 8


class BodyTooLarge(Exception):
    """A body passed its cap; the caller words the InvalidAnswer (it knows what it asked)."""


def human_size(size: float) -> str:
    """1048576 -> "1 MiB", 1536 -> "1.5 KiB": the caps are powers of two, so binary units."""
    for unit in ("bytes", "KiB", "MiB"):
        if abs(size) < 1024:
            return f"{int(size)} bytes" if unit == "bytes" else _number(size, unit)
        size /= 1024
    return _number(size, "GiB")


def _number(size: float, unit: str) -> str:
    return f"{size:.1f}".removesuffix(".0") + f" {unit}"


def read_capped(response: requests.Response, cap: int, chunk_size: int = 64 * 1024) -> bytes:
    """The whole body, but never more than `cap` bytes: raises `BodyTooLarge` past it.

    Counts decoded bytes, so a compressed body cannot inflate past the cap either. Network
    errors propagate as requests/urllib3 exceptions for the caller to map.
    """
    announced = as_number(response.headers.get("Content-Length"))
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    if announced is not None and announced > cap and not encoded:
        raise BodyTooLarge
    buffer = bytearray()
    for chunk in response.iter_content(min(chunk_size, cap + 1)):
        buffer += chunk
        if len(buffer) > cap:
            raise BodyTooLarge
    return bytes(buffer)


def key_pieces(api_key: str) -> frozenset[str]:
    """Every KEY_PIECE-long run of the key, lower-cased: what `redact` looks for."""
    key = api_key.lower()
    return frozenset(key[i : i + KEY_PIECE] for i in range(len(key) - KEY_PIECE + 1))


def redact(text: str, api_key: str, pieces: frozenset[str]) -> str:
    """`text` with the key, and every 8+ character piece of it, as "[redacted]", in any case.

    A gateway may echo the key whole, in another case, cut ("sk-" dropped) or as a prefix
    ("sk-proj-abcd..."). Keys under 6 characters are left alone: hiding them would mangle
    every sentence, and they are not worth hiding from text from the same provider anyway.
    """
    if len(api_key) < 6:
        return text
    lowered = text.lower()
    marked = bytearray(len(text))
    for needle, width in [(api_key.lower(), len(api_key))] + [(p, KEY_PIECE) for p in pieces]:
        start = lowered.find(needle)
        while start != -1:
            marked[start : start + width] = b"\1" * width
            start = lowered.find(needle, start + 1)
    if not any(marked):
        return text
    out: list[str] = []
    for index, char in enumerate(text):
        if not marked[index]:
            out.append(char)
        elif index == 0 or not marked[index - 1]:
            out.append(REDACTED)
    return "".join(out)


class Transport:
    """A pooled `requests.Session` to one provider, safe to share between worker threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float],
        max_retries: int,
        retry_after_cap: float,
        user_agent: str,
        deadline: float,
    ) -> None:
        self.base_url = base_url
        self.host = urlsplit(base_url).netloc
        self.timeout = timeout
        self.deadline = deadline
        # A key read from a file often ends in a newline; requests would then refuse the header
        # with an exception that quotes it, so clean it here and never echo it back.
        api_key = api_key.strip()
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in api_key):
            raise ValueError("The API key contains spaces, control or non-ASCII characters")
        self._api_key = api_key  # never logged, never in repr or messages
        self._pieces = key_pieces(api_key)
        retry = VideosRetry(
            total=max_retries,
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=0.5,
            backoff_max=8,
            raise_on_status=False,  # the last answer comes back so we can map it to an error
            respect_retry_after_header=True,
            retry_after_cap=retry_after_cap,
        )
        # pool_maxsize: a worker's thread pool shares this session, one connection per thread
        # (the tracker's TRACKER_THREADS, 64 by default): a full pool would open a new
        # connection for every read beyond it.
        adapter = GuardedAdapter(pool_connections=4, pool_maxsize=128, max_retries=retry)
        self.session = requests.Session()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        if api_key:
            # Nothing here follows redirects; `media` drops this header on another origin.
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        route: str,
        path: str,
        *,
        cap: int,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Any = None,
        idempotency_key: str | uuid.UUID | None = None,
    ) -> tuple[requests.Response, bytes]:
        """One API call, never redirected: the 2xx answer and its body (at most `cap` bytes)."""
        headers = {}
        if method == "POST":
            headers["Idempotency-Key"] = str(idempotency_key or uuid.uuid4())
        with deadline_guard(self.deadline) as guard:
            response = self.send(
                method,
                route,
                self.base_url + path,
                guard,
                params=params,
                json=json,
                files=files,
                headers=headers,
            )
            with response:
                if not 200 <= response.status_code < 300:
                    # A 3xx too: a redirected POST would be replayed as a GET, and an API
                    # that moved is a base URL to fix, not something to follow.
                    raise status_error(method, route, response, redact=self.redact)
                body = self.read(response, method, route, cap, guard)
        return response, body

    def send(
        self, method: str, route: str, url: str, guard: Deadline, **kwargs: Any
    ) -> requests.Response:
        """One HTTP exchange up to the answer's headers; the body is left to stream."""
        left = guard.remaining()
        if guard.expired or left <= 0:
            raise self.too_slow(method, route, guard)
        connect, read = self.timeout
        with self.translated(method, route, guard):
            return self.session.request(
                method,
                url,
                # Connecting may not outlast the deadline (the watchdog only sees a socket once
                # it exists); the reads are the watchdog's. Not `read` clipped: a download's
                # deadline grows once its size is known, and the socket keeps this timeout.
                timeout=(min(connect, left), read),
                stream=True,
                allow_redirects=False,
                **kwargs,
            )

    @contextmanager
    def translated(self, method: str, route: str, guard: Deadline) -> Iterator[None]:
        """Network failures inside as the client's own errors: too slow, or a broken exchange."""
        try:
            yield
        except DeadlineExceeded:
            raise self.too_slow(method, route, guard) from None
        except (requests.RequestException, Urllib3Error) as exc:
            if guard.expired:
                raise self.too_slow(method, route, guard) from exc
            raise self.network_error(method, route, exc) from exc

    def read(
        self, response: requests.Response, method: str, route: str, cap: int, guard: Deadline
    ) -> bytes:
        """The body of an answer, bounded by `cap` and by the call's deadline."""
        with self.translated(method, route, guard):
            try:
                body = read_capped(response, cap)
            except BodyTooLarge:
                raise InvalidAnswer(
                    f"The provider's answer to {method} {route} is larger than "
                    f"{human_size(cap)}; refused",
                    status=response.status_code,
                    request_id=request_id(response),
                ) from None
        if guard.fired:  # a body without a length, cut off by the deadline, looks complete
            raise self.too_slow(method, route, guard)
        return body

    def too_slow(self, method: str, route: str, guard: Deadline) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"The provider did not finish answering {method} {route} within {guard.seconds:g} s",
            # Only a POST creates anything; by the deadline it may well have been sent.
            outcome_unknown=method == "POST",
        )

    def network_error(self, method: str, route: str, exc: Exception) -> ProviderUnavailable:
        return transport_error(
            method,
            route,
            exc,
            host=self.host,
            read_timeout=self.timeout[1],
            redact=self.redact,
        )

    def redact(self, text: str) -> str:
        return redact(text, self._api_key, self._pieces)


# --- reading answers ---------------------------------------------------------------------------


def json_body(
    response: requests.Response,
    body: bytes,
    method: str,
    route: str,
    *,
    allow_empty: bool = False,
) -> Any:
    """The answer's JSON; a body that is not JSON is `ProviderUnavailable` (a proxy's page)."""
    if allow_empty and not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        mime = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise ProviderUnavailable(
            f"The provider answered {method} {route} with a body that is not JSON ({mime})",
            status=response.status_code,
            request_id=request_id(response),
        ) from None


def parsed[T](parse: Callable[[Any], T], data: Any, response: requests.Response) -> T:
    """`parse(data)`; a refused field says which answer it came in (status, request id)."""
    try:
        return parse(data)
    except InvalidAnswer as exc:
        exc.status = exc.status or response.status_code
        exc.request_id = exc.request_id or request_id(response)
        raise


def created(response: requests.Response, body: bytes, route: str) -> RemoteVideo:
    """The Video a POST answered (OpenRouter's 202 `{id, polling_url, status}` included)."""
    try:
        return parsed(RemoteVideo.from_json, json_body(response, body, "POST", route), response)
    except ProviderUnavailable as exc:
        # The provider said 2xx, so the job probably exists, but we cannot tell its id.
        exc.outcome_unknown = True
        exc.status = exc.status or response.status_code
        exc.request_id = exc.request_id or request_id(response)
        raise
