"""The provider's answers as frozen dataclasses, parsed leniently (gateways omit and add fields).

Parsing never raises a bare exception: what cannot be used becomes `ProviderUnavailable`.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from jobs.provider.errors import ProviderUnavailable
from jobs.provider.fields import as_text, kind, progress, timestamp

logger = logging.getLogger(__name__)

TERMINAL_STATUSES: Final = frozenset({"completed", "failed"})


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
            id=video_id,
            object_type=as_text(data.get("object")) or "video",
            model=as_text(data.get("model")) or "",
            status=as_text(data.get("status")) or "",
            progress=progress(data.get("progress")),
            created_at=timestamp(data.get("created_at")),
            completed_at=timestamp(data.get("completed_at")),
            expires_at=timestamp(data.get("expires_at")),
            prompt=as_text(data.get("prompt")),
            size=as_text(data.get("size")) or "",
            seconds=as_text(data.get("seconds")) or "",
            remixed_from_video_id=as_text(data.get("remixed_from_video_id")),
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
        except ProviderUnavailable as exc:
            # One broken item must not hide the others from an import.
            logger.warning("Skipping a listed video: %s", exc.message)
    has_more = body.get("has_more")
    return VideoPage(
        data=videos,
        has_more=has_more is True or str(has_more).lower() == "true",
        first_id=as_text(body.get("first_id")) or (videos[0].id if videos else None),
        last_id=as_text(body.get("last_id")) or (videos[-1].id if videos else None),
    )
