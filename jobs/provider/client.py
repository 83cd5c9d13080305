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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import IO, Any, Final
from urllib.parse import quote, urlencode, urlsplit

import requests

from jobs.provider import media
from jobs.provider.errors import (
    ROUTE_COLLECTION,
    ROUTE_REMIX,
    ROUTE_VIDEO,
    InvalidAnswer,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    request_id,
)
from jobs.provider.fields import as_number
from jobs.provider.schema import CheckResult, DownloadResult, RemoteVideo, VideoPage, parse_page
from jobs.provider.transport import Transport

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = "remix-dashboard/0.1 (+jobs.provider)"
# The defaults match remixsite.settings (PROVIDER_DEADLINE_SECONDS, PROVIDER_JSON_MAX_BYTES,
# ...); Provider.client() passes the settings, so these only serve code outside Django.
DEFAULT_DEADLINE: Final = 60.0
DEFAULT_JSON_MAX_BYTES: Final = 1024 * 1024
DEFAULT_LIST_MAX_BYTES: Final = 8 * 1024 * 1024
DEFAULT_MAX_REDIRECTS: Final = 3
DEFAULT_MAX_PAGES: Final = 1000
DEFAULT_MIN_RATE: Final = 256 * 1024  # bytes per second a download must keep up, on average


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
    base_url: str,
    api_key: str,
    timeout: tuple[float, float],
    max_retries: int,
    **bounds: Any,
) -> ProviderClient:
    """One client per provider (and key) per process, so every call reuses its connection pool.

    A new client per job meant a new TCP (for a real provider, TLS) handshake per status read;
    the tracker makes thousands of those. A changed key, URL or limit is a different cache
    entry (every argument is hashable, so `lru_cache` keys on all of them). `bounds` are the
    client's keyword arguments (deadline, json_max_bytes, …), passed on as they are.
    """
    return ProviderClient(
        base_url,
        api_key,
        timeout=timeout,
        max_retries=max_retries,
        **bounds,
    )


class ProviderClient:
    """One provider: a pooled `requests.Session`, safe to share between worker threads.

    Every answer is untrusted input: each call has a total `deadline` (seconds, however slowly
    the provider trickles its answer), JSON bodies are read only up to `json_max_bytes` (one
    Video) or `list_max_bytes` (a list page), content downloads follow at most `max_redirects`
    redirects and only to public addresses (unless `allow_private`; None means: only when the
    base URL itself is private, as the local simulator is), and `iter_all` stops after
    `max_pages` pages. A download without an explicit deadline gets `deadline` plus one second
    per `min_rate` bytes the provider announced.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5, 30),
        max_retries: int = 2,
        retry_after_cap: float = 20,
        user_agent: str = DEFAULT_USER_AGENT,
        deadline: float = DEFAULT_DEADLINE,
        json_max_bytes: int = DEFAULT_JSON_MAX_BYTES,
        list_max_bytes: int = DEFAULT_LIST_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        max_pages: int = DEFAULT_MAX_PAGES,
        min_rate: float = DEFAULT_MIN_RATE,
        allow_private: bool | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if deadline <= 0 or min_rate <= 0 or max_pages < 1 or max_redirects < 0:
            raise ValueError("deadline, min_rate, max_pages must be positive, max_redirects >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_after_cap = retry_after_cap
        self.deadline = deadline
        self.json_max_bytes = json_max_bytes
        self.list_max_bytes = list_max_bytes
        self.max_redirects = max_redirects
        self.max_pages = max_pages
        self.min_rate = min_rate
        self._allow_private = allow_private
        self._http = Transport(
            self.base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry_after_cap=retry_after_cap,
            user_agent=user_agent,
            deadline=deadline,
        )

    def __repr__(self) -> str:
        return f"ProviderClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def allow_private(self) -> bool:
        """May content downloads be redirected to non-public addresses? (see the class doc)"""
        if self._allow_private is None:
            # Resolved once, at the first download; a benign race between threads.
            self._allow_private = media.host_is_private(self.base_url)
        return self._allow_private

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
        response, body = self._request(
            "POST", ROUTE_COLLECTION, "/videos", files=parts, idempotency_key=idempotency_key
        )
        return self._created(response, body, ROUTE_COLLECTION)

    def remix(
        self, video_id: str, prompt: str, idempotency_key: str | uuid.UUID | None = None
    ) -> RemoteVideo:
        path = f"/videos/{_quote_id(video_id)}/remix"
        response, body = self._request(
            "POST", ROUTE_REMIX, path, json={"prompt": prompt}, idempotency_key=idempotency_key
        )
        return self._created(response, body, ROUTE_REMIX)

    def retrieve(self, video_id: str) -> RemoteVideo:
        response, body = self._request("GET", ROUTE_VIDEO, f"/videos/{_quote_id(video_id)}")
        video = _parsed(
            RemoteVideo.from_json, self._json(response, body, "GET", ROUTE_VIDEO), response
        )
        millis = as_number(response.headers.get("openai-poll-after-ms"))
        if millis is not None and millis >= 0:
            video = replace(video, poll_after=millis / 1000)
        return video

    def list(self, after: str | None = None, limit: int = 20, order: str = "desc") -> VideoPage:
        params: dict[str, str | int] = {"limit": limit, "order": order}
        if after is not None:
            params["after"] = after
        response, body = self._request(
            "GET", ROUTE_COLLECTION, "/videos", params=params, cap=self.list_max_bytes
        )
        return _parsed(parse_page, self._json(response, body, "GET", ROUTE_COLLECTION), response)

    def iter_all(self, limit: int = 100, order: str = "desc") -> Iterator[RemoteVideo]:
        """Every video, page by page, following `has_more` with `after=<last id>`.

        Ends, with a warning, when a cursor comes back that was already followed (a provider
        going round in circles) or after `max_pages` pages (one that never says it is done).
        """
        seen: set[str] = set()
        cursors: set[str] = set()
        after: str | None = None
        for _ in range(self.max_pages):
            page = self.list(after=after, limit=limit, order=order)
            for video in page.data:
                if video.id not in seen:  # a page boundary shifting under us repeats items
                    seen.add(video.id)
                    yield video
            cursor = page.last_id or (page.data[-1].id if page.data else None)
            if not page.has_more or cursor is None:
                return
            if cursor == after or cursor in cursors:
                logger.warning("GET /videos repeated a cursor; stopping the listing there")
                return
            cursors.add(cursor)
            after = cursor
        logger.warning(
            "GET /videos still had more after %d pages; stopping the listing there",
            self.max_pages,
        )

    def delete(self, video_id: str) -> None:
        response, body = self._request("DELETE", ROUTE_VIDEO, f"/videos/{_quote_id(video_id)}")
        data = self._json(response, body, "DELETE", ROUTE_VIDEO, allow_empty=True)
        if isinstance(data, dict) and data.get("deleted") is False:
            raise ProviderRejected(
                "The provider answered that the video was not deleted",
                status=response.status_code,
                request_id=request_id(response),
            )

    def download(
        self,
        video_id: str,
        variant: str,
        dest: IO[bytes],
        *,
        max_bytes: int,
        deadline: float | None = None,
        chunk_size: int = 64 * 1024,
    ) -> DownloadResult:
        """Stream one asset (`video`, `thumbnail`, `spritesheet`) into `dest`, chunk by chunk.

        Refuses (`InvalidAnswer`) media of the wrong type, more than `max_bytes`, and a
        redirect it may not follow. Raises `ProviderUnavailable` when the body stops short of
        what the provider announced, or when `deadline` (seconds; by default the client's
        deadline plus the announced size at `min_rate`) passes. `dest` may hold a partial
        write after any error.
        """
        query = urlencode({"variant": variant})
        return media.download(
            self._http,
            f"{self.base_url}/videos/{_quote_id(video_id)}/content?{query}",
            variant,
            dest,
            max_bytes=max_bytes,
            deadline=deadline,
            min_rate=self.min_rate,
            max_redirects=self.max_redirects,
            allow_private=self.allow_private,
            chunk_size=chunk_size,
        )

    def check(self) -> CheckResult:
        """GET /videos?limit=1: does this base URL and key reach a Videos API?

        Raises the typed errors (`NoVideosApi`, `AuthenticationFailed`, `ProviderUnavailable`).
        A 400/422 on the list still proves an OpenAI-shaped Videos API that accepted the key;
        some gateways (LiteLLM) refuse to list without a routing hint, so that is reported as
        `can_list=False` rather than as a failure.
        """
        started = time.monotonic()
        try:
            response, body = self._request(
                "GET",
                ROUTE_COLLECTION,
                "/videos",
                params={"limit": 1, "order": "desc"},
                cap=self.list_max_bytes,
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
        page = _parsed(parse_page, self._json(response, body, "GET", ROUTE_COLLECTION), response)
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
        cap: int | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Any = None,
        idempotency_key: str | uuid.UUID | None = None,
    ) -> tuple[requests.Response, bytes]:
        return self._http.request(
            method,
            route,
            path,
            cap=cap or self.json_max_bytes,
            params=params,
            json=json,
            files=files,
            idempotency_key=idempotency_key,
        )

    def _json(
        self,
        response: requests.Response,
        body: bytes,
        method: str,
        route: str,
        *,
        allow_empty: bool = False,
    ) -> Any:
        if allow_empty and not body.strip():
            return None
        try:
            data = json.loads(body)
        except ValueError:
            mime = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise ProviderUnavailable(
                f"The provider answered {method} {route} with a body that is not JSON ({mime})",
                status=response.status_code,
                request_id=request_id(response),
            ) from None
        return data

    def _created(self, response: requests.Response, body: bytes, route: str) -> RemoteVideo:
        try:
            return _parsed(
                RemoteVideo.from_json, self._json(response, body, "POST", route), response
            )
        except ProviderUnavailable as exc:
            # The provider said 2xx, so the job probably exists, but we cannot tell its id.
            exc.outcome_unknown = True
            exc.status = exc.status or response.status_code
            exc.request_id = exc.request_id or request_id(response)
            raise

    def _redact(self, text: str) -> str:
        return self._http.redact(text)


def _parsed[T](parse: Callable[[Any], T], data: Any, response: requests.Response) -> T:
    """`parse(data)`; a refused field says which answer it came in (status, request id)."""
    try:
        return parse(data)
    except InvalidAnswer as exc:
        exc.status = exc.status or response.status_code
        exc.request_id = exc.request_id or request_id(response)
        raise
