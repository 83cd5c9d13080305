"""The provider's answers as frozen dataclasses, parsed leniently (gateways omit and add fields).

Parsing never raises a bare exception: what is not a video at all becomes `ProviderUnavailable`;
a value this dashboard will not store (longer than its column, or holding a NUL, which
PostgreSQL text columns refuse) becomes `InvalidAnswer`, naming the field.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, overload

from jobs.provider.errors import InvalidAnswer, ProviderUnavailable
from jobs.provider.fields import (
    ERROR_CODE_MAX_LENGTH,
    ERROR_MESSAGE_MAX_LENGTH,
    ID_MAX_LENGTH,
    MODEL_MAX_LENGTH,
    PROMPT_MAX_LENGTH,
    RAW_STATUS_MAX_LENGTH,
    SECONDS_MAX_LENGTH,
    SIZE_MAX_LENGTH,
    STATUS_MAX_LENGTH,
    as_number,
    as_text,
    http_url,
    kind,
    normal_status,
    progress,
    timestamp,
)

logger = logging.getLogger(__name__)

# Final states: nothing changes after them. "unknown" is not one (it keeps being polled).
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled", "expired"})

# Field -> (its name in messages, with an article; the longest value accepted).
_BOUNDS: Final[dict[str, tuple[str, int | None]]] = {
    "id": ("an id", ID_MAX_LENGTH),
    "object_type": ("an object type", None),
    "model": ("a model", MODEL_MAX_LENGTH),
    "status": ("a status", STATUS_MAX_LENGTH),
    "raw_status": ("a status", None),  # cut to RAW_STATUS_MAX_LENGTH instead
    "prompt": ("a prompt", PROMPT_MAX_LENGTH),
    "size": ("a size", SIZE_MAX_LENGTH),
    "seconds": ("a clip length (seconds)", SECONDS_MAX_LENGTH),
    "remixed_from_video_id": ("a source video id (remixed_from_video_id)", ID_MAX_LENGTH),
    "error_code": ("an error code", ERROR_CODE_MAX_LENGTH),
    "error_message": ("an error message", None),  # cut to ERROR_MESSAGE_MAX_LENGTH instead
    "first_id": ("a list cursor (first_id)", ID_MAX_LENGTH),
    "last_id": ("a list cursor (last_id)", ID_MAX_LENGTH),
}


@overload
def checked(name: str, value: str) -> str: ...
@overload
def checked(name: str, value: None) -> None: ...
@overload
def checked(name: str, value: str | None) -> str | None: ...
def checked(name: str, value: str | None) -> str | None:
    """`value` if it fits field `name`'s bound and holds no NUL; else `InvalidAnswer`."""
    if value is None:
        return None
    label, limit = _BOUNDS[name]
    if "\x00" in value:
        raise InvalidAnswer(f"The provider sent {label} containing a NUL character")
    if limit is not None and len(value) > limit:
        raise InvalidAnswer(
            f"The provider sent {label} of {len(value):,} characters (at most {limit:,})"
        )
    return value


def _cut(message: str | None, limit: int = ERROR_MESSAGE_MAX_LENGTH) -> str | None:
    if message is None or len(message) <= limit:
        return message
    return message[: limit - 1] + "…"


def _content_url(data: dict[str, Any]) -> str | None:
    """Where the finished MP4 is, when the answer says (new-api `metadata.url`, `url`,
    OpenRouter `unsigned_urls`): the first absolute http(s) URL found."""
    metadata = data.get("metadata")
    urls = data.get("unsigned_urls")
    candidates = [
        metadata.get("url") if isinstance(metadata, dict) else None,
        data.get("url"),
        urls[0] if isinstance(urls, builtins.list) and urls else None,
    ]
    return next((url for url in map(http_url, candidates) if url), None)


def _error(error: object) -> tuple[str | None, str | None]:
    """(code, message) from `{code, message}`, `{message, type}` (new-api) or a plain string."""
    if isinstance(error, dict):
        code = as_text(error.get("code")) or as_text(error.get("type"))
        return code, as_text(error.get("message"))
    if isinstance(error, str) and error:
        return None, error
    return None, None


@dataclass(frozen=True, slots=True)
class RemoteVideo:
    """The provider's Video object, parsed leniently (gateways omit and add fields).

    Strings the spec marks required are `str` ("" when a gateway left them out); nullable ones
    are `str | None`. `status` is normalised to one of `fields.STATUSES` (gateways say
    "pending", "processing", "canceled"…; what is not recognised is "unknown"), and
    `raw_status` keeps the provider's own word. Ids are opaque strings.
    """

    id: str
    object_type: str = "video"  # the JSON's `object`; not named so, to keep the builtin
    model: str = ""
    status: str = ""
    progress: int = 0
    raw_status: str = ""
    # False when the answer had no progress field (new-api, OpenRouter): 0 is then a guess.
    progress_known: bool = True
    # The finished MP4 at a URL the answer named, instead of (or as well as) /content.
    content_url: str | None = None
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
    def is_terminal(self) -> bool:
        """Completed, failed, cancelled or expired; "unknown" is not assumed to be final."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: object) -> RemoteVideo:
        if not isinstance(data, dict):
            raise ProviderUnavailable(
                f"The provider sent a video that is not a JSON object ({kind(data)})"
            )
        video_id = as_text(data.get("id"))
        if not video_id:
            raise ProviderUnavailable("The provider sent a video without an id")
        error_code, error_message = _error(data.get("error"))
        raw_status = checked("raw_status", as_text(data.get("status")) or "")
        status = normal_status(raw_status)
        progress_known = as_number(data.get("progress")) is not None
        percent = progress(data.get("progress"))
        if not progress_known and status == "completed":
            percent = 100  # finished is all the way, whether or not the gateway says so
        return cls(
            id=checked("id", video_id),
            object_type=checked("object_type", as_text(data.get("object")) or "video"),
            model=checked("model", as_text(data.get("model")) or ""),
            status=checked("status", status),
            progress=percent,
            raw_status=_cut(raw_status, RAW_STATUS_MAX_LENGTH) or "",
            progress_known=progress_known,
            content_url=_content_url(data),
            created_at=timestamp(data.get("created_at")),
            completed_at=timestamp(data.get("completed_at")),
            expires_at=timestamp(data.get("expires_at")),
            prompt=checked("prompt", as_text(data.get("prompt"))),
            size=checked("size", as_text(data.get("size")) or ""),
            seconds=checked("seconds", as_text(data.get("seconds")) or ""),
            remixed_from_video_id=checked(
                "remixed_from_video_id", as_text(data.get("remixed_from_video_id"))
            ),
            error_code=checked("error_code", error_code),
            error_message=checked("error_message", _cut(error_message)),
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
    # The size the provider announced (Content-Length, or a Content-Range's total), if any.
    expected: int | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model from the provider's catalog (GET /models, OpenRouter GET /videos/models)."""

    id: str
    durations: tuple[int, ...] = ()  # clip lengths in seconds it allows; () = not said
    sizes: tuple[str, ...] = ()  # "1280x720"…; () = not said
    price_per_second: Decimal | None = None  # dollars; None = not said (the highest, if several)
    # Prices that differ by size (OpenRouter prices per resolution): (size, dollars a second).
    size_prices: tuple[tuple[str, Decimal], ...] = ()

    def price_for(self, size: str) -> Decimal | None:
        """Dollars a second at this size: its own price where the provider named one."""
        return dict(self.size_prices).get(size, self.price_per_second)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing `ProviderClient.check()` found out, in words."""

    capability: str  # key, list, create, remix, edit, extend, delete, variants, idempotency, models
    works: bool | None  # None: could not tell without a paid job, or the answer was ambiguous
    words: str


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What `ProviderClient.check()` learnt, without ever creating a paid job."""

    key_accepted: bool | None
    findings: builtins.list[Finding]
    # Provider field -> value, only for what was verified (can_list, can_remix, can_edit,
    # can_extend, can_delete, serves_variants).
    suggested: dict[str, bool]
    message: str  # one sentence
    elapsed: float  # seconds
    models: builtins.list[ModelInfo] = field(default_factory=builtins.list)

    def finding(self, capability: str) -> Finding | None:
        return next((f for f in self.findings if f.capability == capability), None)


def parse_page(body: Any) -> VideoPage:
    """`GET /videos`'s answer; one broken item is skipped, not fatal to the whole page."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), builtins.list):
        raise ProviderUnavailable("The provider's GET /videos answer is not a list of videos")
    videos: builtins.list[RemoteVideo] = []
    for item in body["data"]:
        try:
            videos.append(RemoteVideo.from_json(item))
        except (ProviderUnavailable, InvalidAnswer) as exc:
            # One broken item must not hide the others from an import.
            logger.warning("Skipping a listed video: %s", exc.message)
    has_more = body.get("has_more")
    # A cursor goes back out in the next request's query string: bounded like an id.
    first_id = checked("first_id", as_text(body.get("first_id")))
    last_id = checked("last_id", as_text(body.get("last_id")))
    return VideoPage(
        data=videos,
        has_more=has_more is True or str(has_more).lower() == "true",
        first_id=first_id or (videos[0].id if videos else None),
        last_id=last_id or (videos[-1].id if videos else None),
    )
