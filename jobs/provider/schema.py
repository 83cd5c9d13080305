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
from typing import Any, Final, overload

from jobs.provider.errors import InvalidAnswer, ProviderUnavailable
from jobs.provider.fields import (
    ERROR_CODE_MAX_LENGTH,
    ERROR_MESSAGE_MAX_LENGTH,
    ID_MAX_LENGTH,
    MODEL_MAX_LENGTH,
    PROMPT_MAX_LENGTH,
    SECONDS_MAX_LENGTH,
    SIZE_MAX_LENGTH,
    STATUS_MAX_LENGTH,
    as_text,
    kind,
    progress,
    timestamp,
)

logger = logging.getLogger(__name__)

TERMINAL_STATUSES: Final = frozenset({"completed", "failed"})

# Field -> (its name in messages, with an article; the longest value accepted).
_BOUNDS: Final[dict[str, tuple[str, int | None]]] = {
    "id": ("an id", ID_MAX_LENGTH),
    "object_type": ("an object type", None),
    "model": ("a model", MODEL_MAX_LENGTH),
    "status": ("a status", STATUS_MAX_LENGTH),
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


def _cut(message: str | None) -> str | None:
    if message is None or len(message) <= ERROR_MESSAGE_MAX_LENGTH:
        return message
    return message[: ERROR_MESSAGE_MAX_LENGTH - 1] + "…"


@dataclass(frozen=True, slots=True)
class RemoteVideo:
    """The provider's Video object, parsed leniently (gateways omit and add fields).

    Strings the spec marks required are `str` ("" when a gateway left them out); nullable ones
    are `str | None`. `status` is the provider's raw string, even an unknown one: the service
    layer decides what an unknown status means.
    """

    id: str
    object_type: str = "video"  # the JSON's `object`; not named so, to keep the builtin
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
    def is_terminal(self) -> bool:
        """True for `completed`/`failed` only; an unknown status is not assumed to be final."""
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
        error = data.get("error")
        error_code = error_message = None
        if isinstance(error, dict):
            error_code, error_message = as_text(error.get("code")), as_text(error.get("message"))
        elif isinstance(error, str) and error:
            error_message = error
        return cls(
            id=checked("id", video_id),
            object_type=checked("object_type", as_text(data.get("object")) or "video"),
            model=checked("model", as_text(data.get("model")) or ""),
            status=checked("status", as_text(data.get("status")) or ""),
            progress=progress(data.get("progress")),
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
class CheckResult:
    """What `ProviderClient.check()` learnt: the Videos API answered, and could it list?"""

    can_list: bool  # False: a gateway that needs a model/provider hint to list (LiteLLM)
    message: str
    newest: RemoteVideo | None
    request_id: str | None
    elapsed: float  # seconds


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
