"""HTTP client for the OpenAI Videos API (the Sora 2 job API) and gateways that copy it.

This package is the only code that speaks HTTP to a provider. It imports nothing from Django,
so it can be reused and tested alone. It returns frozen dataclasses (`schema`) and raises only
the `ProviderError` family (`errors`), never a bare `requests`/`urllib3` exception.
"""

from __future__ import annotations

import builtins
import functools
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import IO, Any, Final
from urllib.parse import quote, urlencode, urlsplit

import requests

from jobs.provider import dialects, media
from jobs.provider.dialects import OPENROUTER, OPENROUTER_LACKS
from jobs.provider.errors import (
    ROUTE_COLLECTION,
    ROUTE_EDITS,
    ROUTE_EXTENSIONS,
    ROUTE_MODELS,
    ROUTE_REMIX,
    ROUTE_VIDEO,
    ROUTE_VIDEO_MODELS,
    NotFound,
    NotOffered,
    NoVideosApi,
    ProviderRejected,
    VariantUnsupported,
    request_id,
)
from jobs.provider.fields import MODEL_MAX_LENGTH, as_number
from jobs.provider.schema import (
    ConnectionReport,
    DownloadResult,
    ModelInfo,
    RemoteVideo,
    VideoPage,
    parse_page,
)
from jobs.provider.transport import Transport, created, json_body, parsed

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


def _checked_id(video_id: str) -> str:
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"video_id must be a non-empty string, not {video_id!r}")
    return video_id


def _quote_id(video_id: str) -> str:
    """An opaque id as one path segment: "/", "+", "=" and "@" are percent-encoded too."""
    _checked_id(video_id)
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
    *,
    dialect: str = dialects.OPENAI,
    routing_hint: str = "",
    **bounds: Any,
) -> ProviderClient:
    """One client per provider (and key) per process, so every call reuses its connection pool.

    A new client per job meant a new TCP (for a real provider, TLS) handshake per status read;
    the tracker makes thousands of those. A changed key, URL, dialect or limit is a different
    cache entry (every argument is hashable, so `lru_cache` keys on all of them). `bounds` are
    the client's keyword arguments (deadline, json_max_bytes, …), passed on as they are.
    """
    return ProviderClient(
        base_url,
        api_key,
        timeout=timeout,
        max_retries=max_retries,
        dialect=dialect,
        routing_hint=routing_hint,
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

    `dialect` is "openai" (also LiteLLM, new-api and re-hosts) or "openrouter" (its own body,
    statuses and catalog; no list, remix, edit, delete or image variants: those raise
    `NotOffered` without sending). `routing_hint` goes out as `custom_llm_provider` on the
    list, which LiteLLM needs to list at all.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        dialect: str = dialects.OPENAI,
        routing_hint: str = "",
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
        if dialect not in dialects.DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(dialects.DIALECTS)}, not {dialect!r}")
        routing_hint = routing_hint.strip()
        if len(routing_hint) > MODEL_MAX_LENGTH or not routing_hint.isprintable():
            raise ValueError("routing_hint must be a short printable word, e.g. openai")
        self.dialect = dialect
        self.routing_hint = routing_hint
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
        return f"ProviderClient({self.base_url!r}, dialect={self.dialect!r})"

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
        """POST /videos as multipart/form-data (the only body the spec lists for create);
        OpenRouter: JSON with `duration`, `resolution` and `aspect_ratio`, answered 202."""
        if self.dialect == OPENROUTER:
            if input_reference is not None:
                raise NotOffered(
                    "OpenRouter's video API takes reference images only as URLs, which this "
                    "dashboard does not send; create the video without one"
                )
            return self._create_json(
                self._openrouter_body(prompt, model=model, seconds=seconds, size=size),
                idempotency_key,
            )
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
        self._offered("remix")
        path = f"/videos/{_quote_id(video_id)}/remix"
        response, body = self._request(
            "POST", ROUTE_REMIX, path, json={"prompt": prompt}, idempotency_key=idempotency_key
        )
        return self._created(response, body, ROUTE_REMIX)

    def edit(
        self, video_id: str, prompt: str, idempotency_key: str | uuid.UUID | None = None
    ) -> RemoteVideo:
        """POST /videos/edits with the documented JSON body: the prompt and the source by id."""
        self._offered("edit")
        body = {"prompt": prompt, "video": {"id": _checked_id(video_id)}}
        return self._post_json(ROUTE_EDITS, body, idempotency_key, "edits")

    def extend(
        self,
        video_id: str,
        prompt: str,
        seconds: str | int,
        *,
        model: str | None = None,
        idempotency_key: str | uuid.UUID | None = None,
    ) -> RemoteVideo:
        """POST /videos/extensions (`seconds` to add to the source); OpenRouter: POST /videos
        with `previous_job_id`, which continues a finished job of the same model."""
        if self.dialect == OPENROUTER:
            body = self._openrouter_body(
                prompt, model=model, seconds=seconds, previous_job_id=_checked_id(video_id)
            )
            return self._create_json(body, idempotency_key)
        body = {"prompt": prompt, "seconds": str(seconds), "video": {"id": _checked_id(video_id)}}
        return self._post_json(ROUTE_EXTENSIONS, body, idempotency_key, "extensions")

    def retrieve(self, video_id: str) -> RemoteVideo:
        response, body = self._request("GET", ROUTE_VIDEO, f"/videos/{_quote_id(video_id)}")
        video = parsed(
            RemoteVideo.from_json, self._json(response, body, "GET", ROUTE_VIDEO), response
        )
        millis = as_number(response.headers.get("openai-poll-after-ms"))
        if millis is not None and millis >= 0:
            video = replace(video, poll_after=millis / 1000)
        return video

    def list(self, after: str | None = None, limit: int = 20, order: str = "desc") -> VideoPage:
        self._offered("list")
        params = self.list_params(limit=limit, order=order)
        if after is not None:
            params["after"] = after
        response, body = self._request(
            "GET", ROUTE_COLLECTION, "/videos", params=params, cap=self.list_max_bytes
        )
        return parsed(parse_page, self._json(response, body, "GET", ROUTE_COLLECTION), response)

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

    def list_params(self, *, limit: int, order: str = "desc") -> dict[str, str | int]:
        """GET /videos's query; LiteLLM lists only with its `custom_llm_provider` hint."""
        params: dict[str, str | int] = {"limit": limit, "order": order}
        if self.routing_hint:
            params["custom_llm_provider"] = self.routing_hint
        return params

    def delete(self, video_id: str) -> None:
        self._offered("delete")
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
        url: str | None = None,
        chunk_size: int = 64 * 1024,
    ) -> DownloadResult:
        """Stream one asset (`video`, `thumbnail`, `spritesheet`) into `dest`, chunk by chunk.

        `url` (a `RemoteVideo.content_url`) fetches the video from there instead of /content,
        checked like a redirect; the key goes only to the base URL's origin. Refuses
        (`InvalidAnswer`) media of the wrong type, more than `max_bytes`, and a redirect it may
        not follow; raises `VariantUnsupported` (before reading the body) for a thumbnail or
        spritesheet the provider does not serve, and `NotReady` when the job is not completed
        yet. Raises `ProviderUnavailable` when the body stops short of what the provider
        announced, or when `deadline` (seconds; by default the client's deadline plus the
        announced size at `min_rate`) passes. `dest` may hold a partial write after any error.
        """
        if url is not None and variant != "video":
            raise ValueError("a content URL names the video only, not its images")
        if self.dialect == OPENROUTER and variant != "video" and variant in media.VARIANT_MEDIA:
            raise VariantUnsupported(OPENROUTER_LACKS["variants"])
        # OpenRouter numbers its outputs; the first is the video.
        query = urlencode({"index": 0} if self.dialect == OPENROUTER else {"variant": variant})
        target = url or f"{self.base_url}/videos/{_quote_id(video_id)}/content?{query}"
        return media.download(
            self._http,
            target,
            variant,
            dest,
            max_bytes=max_bytes,
            deadline=deadline,
            min_rate=self.min_rate,
            max_redirects=self.max_redirects,
            allow_private=self.allow_private,
            chunk_size=chunk_size,
            named=url is not None,
        )

    def models(self) -> builtins.list[ModelInfo]:
        """The provider's catalog: OpenRouter's GET /videos/models, else GET /models."""
        route = ROUTE_VIDEO_MODELS if self.dialect == OPENROUTER else ROUTE_MODELS
        try:
            response, body = self._request("GET", route, route, cap=self.list_max_bytes)
        except NoVideosApi as exc:  # a 404 here says nothing about the Videos API itself
            raise NotOffered(
                f"The provider has no model list (GET {route} answered 404)",
                status=exc.status,
                request_id=exc.request_id,
            ) from exc
        return dialects.parse_models(self._json(response, body, "GET", route))

    def check(self) -> ConnectionReport:
        """What works here, in words, found without creating a paid job (see `probe`).

        Raises `NoVideosApi` when the base URL does not speak the Videos API at all, and
        `ProviderUnavailable` when nothing answered.
        """
        from jobs.provider.probe import check  # probe builds on this module

        return check(self)

    # --- plumbing ----------------------------------------------------------------------------

    def _offered(self, capability: str) -> None:
        """Refuse, in words and without sending, what this dialect does not have."""
        if self.dialect == OPENROUTER and capability in OPENROUTER_LACKS:
            raise NotOffered(OPENROUTER_LACKS[capability])

    def _openrouter_body(self, prompt: str, **given: Any) -> dict[str, Any]:
        try:
            return dialects.openrouter_body(prompt, **given)
        except ValueError as exc:
            raise NotOffered(str(exc)) from None

    def _create_json(
        self, body: dict[str, Any], idempotency_key: str | uuid.UUID | None
    ) -> RemoteVideo:
        response, raw = self._request(
            "POST", ROUTE_COLLECTION, "/videos", json=body, idempotency_key=idempotency_key
        )
        return self._created(response, raw, ROUTE_COLLECTION)

    def _post_json(
        self,
        route: str,
        body: dict[str, Any],
        idempotency_key: str | uuid.UUID | None,
        what: str,
    ) -> RemoteVideo:
        """POST to an optional route (edits, extensions): a missing route says so in words."""
        try:
            response, raw = self._request(
                "POST", route, route, json=body, idempotency_key=idempotency_key
            )
        except ProviderRejected as exc:
            if isinstance(exc, NoVideosApi) or exc.status == 405:
                raise NotOffered(
                    f"The provider does not offer {what} (POST {route} answered HTTP {exc.status})",
                    status=exc.status,
                    request_id=exc.request_id,
                ) from exc
            raise
        return self._created(response, raw, route)

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
        self, response: requests.Response, body: bytes, method: str, route: str, **kw: Any
    ) -> Any:
        return json_body(response, body, method, route, **kw)

    def _created(self, response: requests.Response, body: bytes, route: str) -> RemoteVideo:
        return created(response, body, route)
