"""The OpenRouter dialect's shapes: its video models, and a job as OpenRouter shows it.

Shaped like the entries of `GET /api/v1/videos/models` in OpenRouter's published OpenAPI
document (OpenRouterTeam/typescript-sdk `.speakeasy/in.openapi.yaml`, schema `VideoModel`):
lengths are integers, a shape is a resolution ("720p") times an aspect ratio ("16:9"), and
prices are `pricing_skus`, strings keyed by SKU. The SKU names here are the simulator's own,
one per resolution: `duration_seconds_<resolution>` is US dollars per generated second.

A job is the simulator's own (store and clock-driven lifecycle); `job_to_api` shows it as the
document's VideoGenerationResponse. Its ids are OpenRouter's shape, "job-" + 32 hex digits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .lifecycle import Job
from .store import Store

# Short side in pixels of each resolution the models below offer.
RESOLUTION_PIXELS = {"720p": 720, "1080p": 1080}
# Aspect ratios the models below offer, as (width, height) factors.
ASPECT_RATIOS = {"16:9": (16, 9), "9:16": (9, 16)}
DEFAULT_ASPECT_RATIO = "16:9"
CREATED = 1_760_000_000  # the catalog's "created" timestamps: fixed, so answers are stable


@dataclass(frozen=True)
class VideoModel:
    id: str
    name: str
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    # US dollars per generated second, by resolution.
    prices: dict[str, str]
    # Accepts previous_job_id (OpenRouter: "only models that support continuation accept it").
    continues: bool

    def size_of(self, resolution: str, aspect_ratio: str) -> str:
        return shape_size(resolution, aspect_ratio)

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(
            shape_size(res, ratio) for res in self.resolutions for ratio in self.aspect_ratios
        )

    def resolution_of(self, size: str) -> str | None:
        """The resolution a size ("1280x720") renders at, if this model offers that size."""
        for res in self.resolutions:
            for ratio in self.aspect_ratios:
                if shape_size(res, ratio) == size:
                    return res
        return None

    def cost(self, size: str, seconds: int) -> float | None:
        resolution = self.resolution_of(size)
        if resolution is None:
            return None
        return float(Decimal(self.prices[resolution]) * seconds)

    def to_api(self) -> dict[str, Any]:
        """Every property the document's VideoModel requires, null where it means 'none'."""
        return {
            "id": self.id,
            "canonical_slug": self.id,
            "name": self.name,
            "description": f"{self.name}, as served by the local OpenRouter simulator.",
            "created": CREATED,
            "supported_durations": list(self.durations),
            "supported_resolutions": list(self.resolutions),
            "supported_aspect_ratios": list(self.aspect_ratios),
            "supported_sizes": list(self.sizes),
            "supported_frame_images": None,
            "upscale_factor": None,
            "creativity": None,
            "generate_audio": True,
            "seed": True,
            "allowed_passthrough_parameters": [],
            "pricing_skus": {
                f"duration_seconds_{res}": price for res, price in self.prices.items()
            },
        }


def shape_size(resolution: str, aspect_ratio: str) -> str:
    """ "720p" x "16:9" -> "1280x720": the short side is the resolution's number."""
    short = RESOLUTION_PIXELS[resolution]
    w, h = ASPECT_RATIOS[aspect_ratio]
    if w >= h:
        return f"{short * w // h}x{short}"
    return f"{short}x{short * h // w}"


MODELS: dict[str, VideoModel] = {
    model.id: model
    for model in (
        VideoModel(
            "openai/sora-2",
            "OpenAI: Sora 2",
            (4, 8, 12),
            ("720p",),
            ("16:9", "9:16"),
            {"720p": "0.10"},
            continues=True,
        ),
        VideoModel(
            "openai/sora-2-pro",
            "OpenAI: Sora 2 Pro",
            (4, 8, 12),
            ("720p", "1080p"),
            ("16:9", "9:16"),
            {"720p": "0.30", "1080p": "0.50"},
            continues=True,
        ),
        VideoModel(
            "google/veo-3.1-lite",
            "Google: Veo 3.1 Lite",
            (4, 6, 8),
            ("720p",),
            ("16:9", "9:16"),
            {"720p": "0.05"},
            continues=False,
        ),
    )
}
DEFAULT_MODEL = "openai/sora-2"


def model_for(name: str) -> VideoModel | None:
    """A job's model: seeded jobs (/_sim/seed) carry the bare OpenAI names ("sora-2")."""
    return MODELS.get(name) or MODELS.get(f"openai/{name}")


# -- jobs -------------------------------------------------------------------------------------

JOB_PREFIX = "job-"


def new_job_id() -> str:
    return JOB_PREFIX + secrets.token_hex(16)


def status_of(job: Job, now: float) -> str:
    """OpenRouter's statuses: queued is "pending", and a completed job whose output is gone
    is "expired" (the OpenAI dialect keeps it "completed" with a past expires_at)."""
    state = job.state(now)
    if state.status == "queued":
        return "pending"
    if state.status == "completed" and state.expires_at is not None and now >= state.expires_at:
        return "expired"
    return state.status


ERRORS = {
    "expired": "The generated video expired and is no longer available.",
    "cancelled": "The video generation was cancelled.",
}


def generated_seconds(store: Store, job: Job) -> int:
    """What a job generated (and is billed for): a continuation only its added part."""
    seconds = int(job.seconds)
    if job.remixed_from is not None:
        source = store.get(job.remixed_from, include_deleted=True)
        if source is not None:
            seconds -= int(source.seconds)
    return max(seconds, 0)


def job_to_api(store: Store, job: Job, now: float, root: str) -> dict[str, Any]:
    """The VideoGenerationResponse: `usage` and `unsigned_urls` once completed, `error` (a
    plain string) once it ended otherwise, `generation_id` once it left the queue."""
    job_id = job.id
    status = status_of(job, now)
    body: dict[str, Any] = {
        "id": job_id,
        "polling_url": f"{root}/api/v1/videos/{job_id}",
        "status": status,
    }
    if status != "pending":
        body["generation_id"] = "gen-" + job_id.removeprefix(JOB_PREFIX)
    if status == "completed":
        body["unsigned_urls"] = [f"{root}/api/v1/videos/{job_id}/content?index=0"]
        model = model_for(job.model)
        cost = model.cost(job.size, generated_seconds(store, job)) if model else None
        body["usage"] = {"cost": cost, "is_byok": False}
    elif status == "failed":
        body["error"] = job.error_message or "Video generation failed."
    elif status in ERRORS:
        body["error"] = ERRORS[status]
    return body
