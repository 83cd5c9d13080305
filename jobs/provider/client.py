"""HTTP client for the OpenAI Videos API (the Sora 2 job API) and gateways that copy it.

This package is the only code that speaks HTTP to a provider. It imports nothing from Django,
so it can be reused and tested alone. It returns frozen dataclasses (`schema`) and raises only
the `ProviderError` family (`errors`), never a bare `requests`/`urllib3` exception.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import IO, Any, Final
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error

from jobs.provider.errors import (
    ROUTE_COLLECTION,
    ROUTE_CONTENT,
    ROUTE_REMIX,
    ROUTE_VIDEO,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    request_id,
    status_error,
    transport_error,
)
from jobs.provider.fields import as_number
from jobs.provider.retry import RETRY_METHODS, RETRY_STATUSES, VideosRetry
from jobs.provider.schema import CheckResult, DownloadResult, RemoteVideo, VideoPage, parse_page

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = "remix-dashboard/0.1 (+jobs.provider)"


def _quote_id(video_id: str) -> str:
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"video_id must be a non-empty string, not {video_id!r}")
    if video_id.strip(".") == "":
        # "." and ".." survive quoting and are then resolved as path segments by requests and
        # by servers ("/videos/.." is "/"), so they would reach another route. No video has them.
        raise NotFound(f"No video can have the id {video_id!r}")
    return quote(video_id, safe="")


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
        millis = as_number(response.headers.get("openai-poll-after-ms"))
        if millis is not None and millis >= 0:
            video = replace(video, poll_after=millis / 1000)
        return video

    def list(self, after: str | None = None, limit: int = 20, order: str = "desc") -> VideoPage:
        params: dict[str, str | int] = {"limit": limit, "order": order}
        if after is not None:
            params["after"] = after
        response = self._request("GET", ROUTE_COLLECTION, "/videos", params=params)
        return parse_page(self._json(response, "GET", ROUTE_COLLECTION))

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
                request_id=request_id(response),
            )

    def download(
        self, video_id: str, variant: str, dest: IO[bytes], chunk_size: int = 64 * 1024
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
                    request_id=request_id(response),
                )
            expected = as_number(response.headers.get("Content-Length"))
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
                        request_id=request_id(response),
                    ) from exc
                if chunk:
                    dest.write(chunk)
                    written += len(chunk)
            if expected is not None and not encoded and written != expected:
                raise ProviderUnavailable(
                    f"The {variant} download ended after {written} of {int(expected)} bytes",
                    status=response.status_code,
                    request_id=request_id(response),
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
            if type(exc) is not ProviderRejected or exc.status not in (400, 422):
                raise
            return CheckResult(
                can_list=False,
                message=f"The Videos API answered, but it cannot list videos: {exc.message}",
                newest=None,
                request_id=exc.request_id,
                elapsed=time.monotonic() - started,
            )
        page = parse_page(self._json(response, "GET", ROUTE_COLLECTION))
        elapsed = time.monotonic() - started
        newest = page.data[0] if page.data else None
        found = "it has videos" if newest else "it has no videos yet"
        return CheckResult(
            can_list=True,
            message=f"The Videos API answered in {elapsed:.2f} s; {found}",
            newest=newest,
            request_id=request_id(response),
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
            raise transport_error(
                method,
                route,
                exc,
                host=urlsplit(self.base_url).netloc,
                read_timeout=self.timeout[1],
                redact=self._redact,
            ) from exc
        if 200 <= response.status_code < 300:
            return response
        with response:
            raise status_error(method, route, response, redact=self._redact)

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
                request_id=request_id(response),
            ) from None

    def _created(self, response: requests.Response, route: str) -> RemoteVideo:
        try:
            return RemoteVideo.from_json(self._json(response, "POST", route))
        except ProviderUnavailable as exc:
            # The provider said 2xx, so the job probably exists, but we cannot tell its id.
            exc.outcome_unknown = True
            exc.status = exc.status or response.status_code
            exc.request_id = exc.request_id or request_id(response)
            raise

    def _redact(self, text: str) -> str:
        # A gateway might echo the key in a message; short keys would mangle every sentence
        # and are not worth hiding from text that came from the same provider anyway.
        if len(self._api_key) >= 6:
            return text.replace(self._api_key, "[redacted]")
        return text
