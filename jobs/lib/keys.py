"""Which environment variables a provider row may name: its key is read from one of them."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

env_var_name = RegexValidator(
    r"^[A-Z_][A-Z0-9_]*$", "Use an environment variable NAME, like PROVIDER_KEY_SORA."
)


def provider_key_variable(name: str) -> None:
    """Only variables meant for provider keys: any other (SECRET_KEY, DATABASE_URL…) would be
    sent as a Bearer token to whatever base URL a staff user typed in."""
    allowed = settings.PROVIDER_KEY_VARIABLES
    if name.startswith(settings.PROVIDER_KEY_PREFIX) or name in allowed:
        return
    others = f" or one of {', '.join(allowed)}" if allowed else ""
    raise ValidationError(
        f"“{name}” is not a provider key variable: its name must start with "
        f"{settings.PROVIDER_KEY_PREFIX}{others} (PROVIDER_KEY_VARIABLES). Other variables "
        "hold the site's own secrets and are never sent to a provider."
    )
