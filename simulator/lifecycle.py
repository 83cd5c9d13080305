"""The job model and its clock-driven lifecycle: what a job is, and its state at any moment.

A job's state is never advanced by a worker: it is computed from the wall clock and the plan
fixed at creation (total duration, optional failure point). That makes restarts trivial, since
a job created before a restart is simply further along when read again, and it means a change
of `speed` only affects jobs created afterwards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .config import Settings

MODELS: tuple[str, ...] = (
    "sora-2",
    "sora-2-pro",
    "sora-2-2025-10-06",
    "sora-2-pro-2025-10-06",
    "sora-2-2025-12-08",
)
SIZES: tuple[str, ...] = ("720x1280", "1280x720", "1024x1792", "1792x1024")
# The plain sora-2 family only renders the two 720p sizes; the pro models render all four.
SMALL_SIZES: tuple[str, ...] = ("720x1280", "1280x720")
SECONDS: tuple[str, ...] = ("4", "8", "12")
DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE = "sora-2", "4", "720x1280"
CANCELLED = "cancelled"  # the error_code Store.cancel writes (with --allow-cancel)

SECONDS_PER_CLIP_SECOND = 5.0  # a 4 s clip takes 20 s to "render" at speed 1
QUEUED_FRACTION = 0.1  # share of the render time a job spends queued

FAILURES: tuple[tuple[str, str], ...] = (
    ("video_generation_failed", "Video generation failed. Please try again."),
    (
        "moderation_blocked",
        "Your request was blocked by our moderation system as it may violate our usage policies.",
    ),
    ("internal_error", "The video could not be generated because of an internal error."),
)

SAMPLE_PROMPTS: tuple[str, ...] = (
    "A calico cat playing a grand piano on a dimly lit stage, slow dolly in",
    "Drone shot over a misty pine forest at sunrise, golden light",
    "Close-up of rain drops hitting a neon-lit Tokyo street at night",
    "A paper boat sailing down a gutter stream after a summer storm",
    "Time-lapse of a sourdough loaf rising and baking in a glass oven",
    "An astronaut tending a tiny vegetable garden inside a space station",
    "Waves crashing on black volcanic sand, slow motion, 35mm film look",
    "A red fox trotting through fresh snow in a quiet birch forest",
    "Street musician playing saxophone under a bridge, handheld camera",
    "Hot air balloons rising over Cappadocia at dawn, wide shot",
    "A vintage tram climbing a steep hill in Lisbon, afternoon sun",
    "Macro shot of a honeybee landing on a lavender flower",
)


def model_sizes(model: str) -> tuple[str, ...]:
    return SIZES if "-pro" in model else SMALL_SIZES


@dataclass(frozen=True)
class JobState:
    status: str
    progress: int
    completed_at: float | None
    expires_at: float | None


@dataclass(frozen=True)
class Job:
    seq: int
    id: str
    model: str
    prompt: str
    size: str
    seconds: str
    created: float
    duration: float
    fail_at: float | None
    error_code: str | None
    error_message: str | None
    expires_after: float
    expired_at: float | None
    remixed_from: str | None
    reference: str | None
    deleted: int
    notified: int
    pad_bytes: int | None

    @property
    def terminal_time(self) -> float:
        return self.created + self.duration * (self.fail_at if self.fail_at is not None else 1.0)

    def state(self, now: float) -> JobState:
        frac = (now - self.created) / self.duration if self.duration > 0 else 1.0
        if self.fail_at is not None and frac >= self.fail_at:
            # A cancelled job (Store.cancel) is one that "failed" where it stood, with this code.
            ended = "cancelled" if self.error_code == CANCELLED else "failed"
            return JobState(ended, _progress(self.fail_at), self.terminal_time, None)
        if frac >= 1.0:
            completed = self.created + self.duration
            expires = completed + self.expires_after
            if self.expired_at is not None:
                expires = min(expires, self.expired_at)
            return JobState("completed", 100, completed, expires)
        if frac < QUEUED_FRACTION:
            return JobState("queued", 0, None, None)
        return JobState("in_progress", _progress(frac), None, None)

    def to_api(self, now: float) -> dict[str, Any]:
        """The Video object: all thirteen fields, always, with null where unset (as the spec)."""
        st = self.state(now)
        error = None
        if st.status == "failed":
            error = {"code": self.error_code, "message": self.error_message}
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": st.status,
            "progress": st.progress,
            "created_at": int(self.created),
            "completed_at": None if st.completed_at is None else int(st.completed_at),
            "expires_at": None if st.expires_at is None else int(st.expires_at),
            "prompt": self.prompt,
            "size": self.size,
            "seconds": self.seconds,
            "remixed_from_video_id": self.remixed_from,
            "error": error,
        }


def _progress(frac: float) -> int:
    if frac < QUEUED_FRACTION:
        return 0
    return max(0, min(99, int((frac - QUEUED_FRACTION) / (1 - QUEUED_FRACTION) * 100)))


@dataclass(frozen=True)
class Plan:
    """How a new job will behave, drawn once from the settings at creation time."""

    duration: float
    fail_at: float | None
    error_code: str | None
    error_message: str | None
    expires_after: float

    @classmethod
    def draw(cls, settings: Settings, seconds: str) -> Plan:
        speed = settings.speed
        duration = SECONDS_PER_CLIP_SECOND * int(seconds) / speed
        if settings.slow_rate > 0 and random.random() < settings.slow_rate:
            duration *= settings.slow_factor
        if settings.duration_jitter > 0:
            duration *= 1 + random.uniform(-settings.duration_jitter, settings.duration_jitter)
        fail_at = code = message = None
        if settings.fail_rate > 0 and random.random() < settings.fail_rate:
            # Anywhere from still queued to nearly done, so clients see both failure paths.
            fail_at = random.uniform(0.05, 0.9)
            code, message = random.choice(FAILURES)
        return cls(duration, fail_at, code, message, settings.expires_after / speed)
