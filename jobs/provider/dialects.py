"""How a dialect differs from the OpenAI Videos API: OpenRouter's body and the model catalog.

OpenRouter's video API (OpenRouterTeam's published OpenAPI document, `/api/v1/videos`) takes a
JSON body with `duration` as an integer and `resolution` + `aspect_ratio` instead of `size`,
and lists its models at `GET /videos/models` with their durations, resolutions, aspect ratios,
sizes and prices. It has no list, remix, edit, delete or image variants. Everything read here
comes from the provider, so it is bounded and validated like any other answer.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from jobs.provider.fields import MODEL_MAX_LENGTH, SIZE_MAX_LENGTH, as_number, as_text
from jobs.provider.schema import ModelInfo

logger = logging.getLogger(__name__)

OPENAI: Final = "openai"
OPENROUTER: Final = "openrouter"
DIALECTS: Final = frozenset({OPENAI, OPENROUTER})

# What OpenRouter's video API does not have, in words (the client says so without sending).
OPENROUTER_LACKS: Final = {
    "list": "OpenRouter's video API has no list of jobs",
    "remix": "OpenRouter's video API has no remix",
    "edit": "OpenRouter's video API has no edits",
    "delete": "OpenRouter's video API has no delete; a job stays there until it expires",
    "variants": "OpenRouter's video API serves only the video, no thumbnail or spritesheet",
}

# The catalog is untrusted input: this many models, lengths and sizes are plenty.
MAX_MODELS: Final = 500
MAX_CHOICES: Final = 50
MAX_SECONDS: Final = 600
MAX_SIDE: Final = 8192
MAX_PRICE: Final = Decimal("9999.9999")  # CatalogEntry.price_per_second holds 8 digits, 4 after

_SIZE_RE: Final = re.compile(r"^\s*(\d{1,5})\s*[x×*]\s*(\d{1,5})\s*$", re.IGNORECASE)
_RESOLUTION_RE: Final = re.compile(r"^\s*(\d{3,4})p\s*$", re.IGNORECASE)
_RATIO_RE: Final = re.compile(r"^\s*(\d{1,2})\s*:\s*(\d{1,2})\s*$")
_SKU_RESOLUTION_RE: Final = re.compile(r"(?:^|_)(\d{3,4}p)$", re.IGNORECASE)
# Standard labels a size snaps to: Sora's 1792x1024 is "1080p", "16:9" to OpenRouter.
_RESOLUTIONS: Final = (360, 480, 540, 720, 1080, 1440, 2160)
_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")


def size_parts(size: str) -> tuple[int, int] | None:
    """ "1280x720" -> (1280, 720); None for anything that is not a sensible WxH."""
    match = _SIZE_RE.match(size) if isinstance(size, str) else None
    if not match:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        return None
    return width, height


def resolution_and_ratio(size: str) -> tuple[str, str] | None:
    """ "1280x720" -> ("720p", "16:9"), "720x1280" -> ("720p", "9:16"): OpenRouter's words."""
    parts = size_parts(size)
    if parts is None:
        return None
    width, height = parts
    short = min(width, height)
    resolution = min(_RESOLUTIONS, key=lambda r: abs(r - short))

    def distance(ratio: str) -> float:
        a, b = (int(n) for n in ratio.split(":"))
        return abs(math.log((width / height) / (a / b)))

    ratio = min(_RATIOS, key=distance)
    if distance(ratio) > 0.03:  # not near a standard ratio: say exactly what it is
        divisor = math.gcd(width, height)
        ratio = f"{width // divisor}:{height // divisor}"
    return f"{resolution}p", ratio


def size_from(resolution: str, ratio: str) -> str | None:
    """("720p", "16:9") -> "1280x720": the size the catalog offers for that combination."""
    res = _RESOLUTION_RE.match(resolution) if isinstance(resolution, str) else None
    rat = _RATIO_RE.match(ratio) if isinstance(ratio, str) else None
    if not res or not rat:
        return None
    short, a, b = int(res.group(1)), int(rat.group(1)), int(rat.group(2))
    if a == 0 or b == 0:
        return None
    long = 2 * round(short * max(a, b) / min(a, b) / 2)  # even: what encoders produce
    width, height = (long, short) if a >= b else (short, long)
    size = f"{width}x{height}"
    return size if size_parts(size) else None


def openrouter_body(
    prompt: str,
    *,
    model: str | None,
    seconds: str | int | None,
    size: str | None = None,
    previous_job_id: str | None = None,
) -> dict[str, Any]:
    """The JSON OpenRouter's POST /videos takes for what `create`/`extend` were given."""
    body: dict[str, Any] = {"prompt": prompt}
    if model:
        body["model"] = model
    if seconds is not None and str(seconds).strip():
        duration = as_number(seconds)
        if duration is None or not duration.is_integer() or duration <= 0:
            raise ValueError(f"OpenRouter takes a whole number of seconds, not {seconds!r}")
        body["duration"] = int(duration)
    if size:
        mapped = resolution_and_ratio(size)
        if mapped is None:
            raise ValueError(f"{size!r} is not a size like 1280x720")
        body["resolution"], body["aspect_ratio"] = mapped
    if previous_job_id:
        body["previous_job_id"] = previous_job_id
    return body


# --- the model catalog ------------------------------------------------------------------------


def parse_models(data: object) -> list[ModelInfo]:
    """`{"data": [model, ...]}` (GET /models, or OpenRouter's GET /videos/models) as ModelInfo.

    A model that cannot be read is skipped, not fatal: one odd entry must not hide the rest.
    """
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return []
    models: list[ModelInfo] = []
    seen: set[str] = set()
    for item in items[:MAX_MODELS]:
        info = _model(item)
        if info is not None and info.id not in seen:
            seen.add(info.id)
            models.append(info)
    if len(items) > MAX_MODELS:
        logger.warning(
            "The provider listed %d models; only the first %d read", len(items), MAX_MODELS
        )
    return models


def _model(item: object) -> ModelInfo | None:
    if not isinstance(item, dict):
        return None
    model_id = as_text(item.get("id"))
    if not model_id or len(model_id) > MODEL_MAX_LENGTH or "\x00" in model_id:
        return None
    sizes = _sizes(item)
    price, by_resolution = _prices(item)
    size_prices = []
    for size in sizes:
        shape = resolution_and_ratio(size)
        if shape and shape[0] in by_resolution:
            size_prices.append((size, by_resolution[shape[0]]))
    return ModelInfo(
        id=model_id,
        durations=_durations(item.get("supported_durations") or item.get("seconds")),
        sizes=sizes,
        price_per_second=price,
        size_prices=tuple(size_prices),
    )


def _bounded_list(value: object) -> list[Any]:
    return value[:MAX_CHOICES] if isinstance(value, list) else []


def _durations(value: object) -> tuple[int, ...]:
    found: list[int] = []
    for entry in _bounded_list(value):
        number = as_number(entry)
        if number is not None and number.is_integer() and 1 <= number <= MAX_SECONDS:
            found.append(int(number))
    return tuple(sorted(set(found)))


def _sizes(item: dict[str, Any]) -> tuple[str, ...]:
    """Sizes as WxH: `supported_sizes` (or `sizes`) where given, else resolution x ratio."""
    sizes = [
        text
        for text in map(as_text, _bounded_list(item.get("supported_sizes") or item.get("sizes")))
        if text and len(text) <= SIZE_MAX_LENGTH and size_parts(text)
    ]
    if not sizes:
        resolutions = _bounded_list(item.get("supported_resolutions"))
        ratios = _bounded_list(item.get("supported_aspect_ratios"))
        sizes = [
            size
            for resolution in resolutions
            for ratio in ratios
            if (size := size_from(str(resolution), str(ratio)))
        ]
    normal = ["{}x{}".format(*parts) for parts in map(size_parts, sizes) if parts]
    return tuple(dict.fromkeys(normal))[:MAX_CHOICES]


def _prices(item: dict[str, Any]) -> tuple[Decimal | None, dict[str, Decimal]]:
    """Dollars per second from OpenRouter's `pricing_skus` (or a `pricing` object): overall,
    and by resolution where a SKU names one ("duration_seconds_720p").

    Per-second SKUs also differ by audio ("duration_seconds_with_audio_720p"); the catalog has
    one price per model and size, so the highest is taken: an estimate should never promise
    less than the provider will charge.
    """
    candidates: list[tuple[str, object]] = []
    for name in ("pricing_skus", "pricing"):
        table = item.get(name)
        if isinstance(table, dict):
            candidates.extend((str(key), value) for key, value in list(table.items())[:100])
        elif name == "pricing" and table is not None:
            candidates.append(("per_second", table))
    overall: Decimal | None = None
    by_resolution: dict[str, Decimal] = {}
    for key, value in candidates:
        price = _amount(value)
        if "second" not in key.lower() or price is None:
            continue
        overall = price if overall is None else max(overall, price)
        match = _SKU_RESOLUTION_RE.search(key)
        if match:
            resolution = match.group(1).lower()
            by_resolution[resolution] = max(price, by_resolution.get(resolution, price))
    return overall, by_resolution


def _amount(value: object) -> Decimal | None:
    text = as_text(value)
    if text is None or len(text) > 32:
        return None
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        return None
    return amount.quantize(Decimal("0.0001"))


def model_names(models: Iterable[ModelInfo], limit: int = 8) -> str:
    """ "sora-2, sora-2-pro and 3 more": a catalog in a sentence."""
    names = [model.id for model in models]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
