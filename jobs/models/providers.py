"""Providers that speak the Videos API, and their catalogs of models, sizes and prices."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from jobs.lib.keys import env_var_name, provider_key_variable

if TYPE_CHECKING:
    from jobs.provider.client import ProviderClient


class Provider(models.Model):
    """A service that speaks the Videos API. The key stays in the environment, never in the DB."""

    class Dialect(models.TextChoices):
        # OpenAI's shape, also spoken (with accents the client tolerates) by LiteLLM, new-api
        # and re-hosts; OpenRouter's video API differs in paths, fields and statuses.
        OPENAI = "openai", "OpenAI Videos API (also LiteLLM, new-api, re-hosts)"
        OPENROUTER = "openrouter", "OpenRouter video API"

    name = models.CharField(max_length=100, unique=True)
    dialect = models.CharField(max_length=16, choices=Dialect, default=Dialect.OPENAI)
    base_url = models.URLField(
        max_length=500, help_text="Up to and including /v1, e.g. http://127.0.0.1:8001/v1"
    )
    api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        validators=[env_var_name, provider_key_variable],
        help_text="Name of the environment variable that holds the API key, starting with "
        "PROVIDER_KEY_ (the key itself is never stored here).",
    )
    webhook_secret_env = models.CharField(
        "webhook secret variable",
        max_length=100,
        blank=True,
        validators=[env_var_name],
        help_text="Name of the environment variable holding the whsec_… signing secret.",
    )
    can_create = models.BooleanField("create", default=True)
    can_remix = models.BooleanField("remix", default=True)
    can_edit = models.BooleanField("edit", default=False, help_text="POST /videos/edits")
    can_extend = models.BooleanField("extend", default=False, help_text="POST /videos/extensions")
    can_list = models.BooleanField(
        "list / import",
        default=True,
        help_text="Some gateways cannot list jobs without a routing hint.",
    )
    can_cancel = models.BooleanField(
        "cancel",
        default=False,
        help_text="DELETE on a queued or running job cancels it (the Videos API itself only "
        "deletes finished jobs).",
    )
    can_delete = models.BooleanField(
        "delete",
        default=True,
        help_text="DELETE /videos/{id} removes the provider's copy. Without it, a video is "
        "removed here only and the provider keeps its copy until it expires.",
    )
    serves_variants = models.BooleanField(
        "serves thumbnails and spritesheets",
        default=True,
        help_text="GET /videos/{id}/content?variant=thumbnail|spritesheet gives images. "
        "Without it (LiteLLM), the poster and spritesheet are made here from the video.",
    )
    routing_hint = models.CharField(
        "routing hint (custom_llm_provider)",
        max_length=100,
        blank=True,
        help_text="LiteLLM lists videos only for one upstream: e.g. openai. Sent as "
        "?custom_llm_provider= on GET /videos.",
    )
    honours_idempotency = models.BooleanField(
        "honours Idempotency-Key",
        default=False,
        help_text="The provider returns the first job for a repeated Idempotency-Key. Only then "
        "is a create whose answer was lost sent again without a lookup first.",
    )
    webhooks_enabled = models.BooleanField(
        "webhooks",
        default=False,
        help_text="The provider sends signed video.completed/video.failed events to this site.",
    )
    enabled = models.BooleanField(default=True)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_report = models.TextField(
        blank=True, editable=False, help_text="What the last Check connection found"
    )
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_provider"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key(self) -> str:
        try:  # checked again here: a row written before the rule, or by hand, must not leak
            provider_key_variable(self.api_key_env)
        except ValidationError:
            return ""
        return os.environ.get(self.api_key_env, "")

    @property
    def webhook_secret(self) -> str:
        return os.environ.get(self.webhook_secret_env, "") if self.webhook_secret_env else ""

    # What a provider may be asked to do, and the words for a provider that cannot.
    REFUSALS = {
        "create": "does not offer creating videos",
        "cancel": "cannot cancel a running job",
        "remix": "does not offer remix",
        "edit": "does not offer edits",
        "extend": "does not offer extensions",
        "list": "cannot list its jobs",
        "delete": "cannot delete its copies",
    }

    def require(self, capability: str | None = None) -> None:
        """Raise a ValidationError in words unless this provider is enabled and can do it."""
        if not self.enabled:
            raise ValidationError(f"The provider “{self}” is disabled.")
        if capability is not None and not getattr(self, f"can_{capability}"):
            raise ValidationError(f"The provider “{self}” {self.REFUSALS[capability]}.")

    def client(self) -> ProviderClient:
        from jobs.provider.client import shared_client  # the provider package loads requests

        return shared_client(
            self.base_url,
            self.api_key,
            (5, settings.PROVIDER_TIMEOUT_SECONDS),
            settings.PROVIDER_MAX_RETRIES,
            dialect=self.dialect,
            routing_hint=self.routing_hint,
            deadline=settings.PROVIDER_DEADLINE_SECONDS,
            json_max_bytes=settings.PROVIDER_JSON_MAX_BYTES,
            list_max_bytes=settings.PROVIDER_LIST_MAX_BYTES,
            max_redirects=settings.PROVIDER_MAX_REDIRECTS,
            max_pages=settings.SYNC_MAX_PAGES,
            min_rate=settings.ASSET_MIN_RATE,
        )

    def model_ids(self) -> list[str]:
        return sorted({entry.model for entry in self.catalog.all()})


class CatalogEntry(models.Model):
    """One model at one size: which clip lengths it allows and what a second costs."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="catalog")
    model = models.CharField(max_length=100)
    size = models.CharField(max_length=20)
    seconds = models.JSONField(
        default=list, help_text='Allowed clip lengths, e.g. ["4", "8", "12"]'
    )
    price_per_second = models.DecimalField(max_digits=8, decimal_places=4, default=Decimal("0"))

    class Meta:
        ordering = ["model", "size"]
        verbose_name_plural = "catalog entries"
        constraints = [
            models.UniqueConstraint(fields=["provider", "model", "size"], name="catalog_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.size} (${self.price_per_second}/s)"
