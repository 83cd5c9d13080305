"""Run-time settings shared by the CLI, the HTTP server and the background threads.

The names are the CLI option names with underscores; `POST /_sim/config` patches them while
the simulator runs, so every reader takes the current value at the moment it needs it.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .quirks import parse_quirks

# The APIs the simulator can speak (`--dialect`): OpenAI's Videos API, or OpenRouter's.
DIALECTS: tuple[str, ...] = ("openai", "openrouter")
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "timeout",
    "drop",
    "malformed",
    "accept_then_drop",
    "accept_then_timeout",
    "create_then_500",
    "truncate",
)
# Faults that only make sense when the request creates something (POST create / remix).
POST_ONLY_FAULTS = frozenset({"accept_then_drop", "accept_then_timeout", "create_then_500"})
# Faults that only make sense on a content download (a body worth cutting short).
CONTENT_ONLY_FAULTS = frozenset({"truncate"})


class ConfigError(ValueError):
    """A setting with a bad name or value (answered with 400 by /_sim/config)."""


def parse_faults(value: object) -> list[str]:
    """Accept `"all"`, a comma string or a list; reject unknown kinds so typos are loud."""
    if value is None or value == "all":
        return list(FAULT_KINDS)
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError("faults must be a list or a comma separated string")
    kinds = [str(item).strip() for item in items if str(item).strip()]
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ConfigError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    return kinds


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Settings:
    speed: float = 1.0
    api_key: str | None = None
    expires_after: float = 3600.0
    samples: int = 0
    fault_rate: float = 0.0
    faults: list[str] = field(default_factory=lambda: list(FAULT_KINDS))
    retry_after: float = 1.0
    hang_seconds: float = 40.0
    # Seconds every API answer takes (a provider far away, or busy): the benches' 300 ms.
    latency: float = 0.0
    fail_rate: float = 0.0
    slow_rate: float = 0.0
    slow_factor: float = 4.0
    # Render times vary by up to this share either way (real ones are not tidy multiples).
    duration_jitter: float = 0.0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_duplicates: bool = False
    webhook_shuffle: bool = False
    webhook_delay: float = 0.0
    pad_video_mb: float = 0.0
    fps: int = 24
    # A provider that ignores Idempotency-Key: every POST creates a new job.
    ignore_idempotency: bool = False
    # A provider that can cancel: DELETE of a queued or in-progress job cancels it (status
    # "cancelled") instead of refusing, as the Videos API itself does.
    allow_cancel: bool = False
    # Gateway accents (names in `quirks.QUIRKS`): answer the way LiteLLM, new-api... do.
    quirks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self)

    def update(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Validate the whole patch first, then apply it, so a bad field changes nothing."""
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in patch.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}; known: {', '.join(known)}")
            clean[name] = _coerce(name, value)
        with self._lock:
            for name, value in clean.items():
                setattr(self, name, value)
            if self.webhook_url and not self.webhook_secret:
                self.webhook_secret = new_webhook_secret()
        return self.as_dict()


_RATES = {"fault_rate", "fail_rate", "slow_rate", "duration_jitter"}
_POSITIVE = {"speed", "slow_factor"}
_NON_NEGATIVE = {
    "expires_after",
    "retry_after",
    "hang_seconds",
    "latency",
    "webhook_delay",
    "pad_video_mb",
}
_BOOLS = {"webhook_duplicates", "webhook_shuffle", "ignore_idempotency", "allow_cancel"}
_OPTIONAL_STR = {"api_key", "webhook_url", "webhook_secret"}


def _coerce(name: str, value: object) -> Any:
    if name == "faults":
        return parse_faults(value)
    if name == "quirks":
        try:
            return parse_quirks(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if name in _BOOLS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {
            "true",
            "1",
            "yes",
            "on",
            "false",
            "0",
            "no",
            "off",
        }:
            return value.lower() in {"true", "1", "yes", "on"}
        raise ConfigError(f"{name} must be a boolean")
    if name in _OPTIONAL_STR:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string or null")
        return value
    if name == "fps":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 60:
            raise ConfigError("fps must be a whole number from 1 to 60")
        return int(value)
    if name == "samples":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError("samples must be a non-negative integer")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{name} must be a number")
    try:
        number = float(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number") from exc
    if name in _RATES and not 0 <= number <= 1:
        raise ConfigError(f"{name} must be between 0 and 1")
    if name in _POSITIVE and number <= 0:
        raise ConfigError(f"{name} must be > 0")
    if name in _NON_NEGATIVE and number < 0:
        raise ConfigError(f"{name} must be >= 0")
    return number
