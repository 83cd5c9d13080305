"""Filling a provider's catalog (models, sizes, lengths, prices) from what the provider lists."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from jobs.models import CatalogEntry, Provider
from jobs.provider.errors import AuthenticationFailed, NotOffered, ProviderError


@dataclass
class CatalogFill:
    """What `fill_catalog` did, for the admin's message."""

    provider: Provider
    listed: int = 0
    added: int = 0
    updated: int = 0
    unpriced: int = 0  # entries that still cost $0 a second: the provider named no price
    skipped: list[str] = field(default_factory=list)  # models listed without sizes or lengths

    def __str__(self) -> str:
        said = (
            f"{self.listed} models listed; {self.added} catalog entries added, "
            f"{self.updated} updated."
        )
        if self.unpriced:
            said += (
                f" {self.unpriced} new entries have no price (the provider named none): set "
                "them in the catalog below."
            )
        if self.skipped:
            names = ", ".join(self.skipped[:8]) + (" …" if len(self.skipped) > 8 else "")
            said += f" Not added, because the provider named no sizes or lengths for them: {names}."
        return said


def fill_catalog(*, provider: Provider) -> CatalogFill:
    """Add or update a CatalogEntry per listed model and size (OpenRouter names durations,
    sizes and per-second prices; OpenAI-shaped /models only ids). Lengths and prices the
    provider gives replace ours; where it gives no price, the price here is kept. Entries it
    does not list are left alone: an admin may have added them by hand."""
    try:
        models = provider.client().models()
    except NotOffered as exc:
        raise ValidationError(
            f"“{provider}” {_lower(exc.message)}; fill the catalog by hand."
        ) from exc
    except AuthenticationFailed as exc:
        raise ValidationError(f"“{provider}” refused the API key: {exc}") from exc
    except ProviderError as exc:
        raise ValidationError(f"Could not read the models of “{provider}”: {exc}") from exc
    result = CatalogFill(provider, listed=len(models))
    with transaction.atomic():
        for info in models:
            if not info.sizes or not info.durations:
                result.skipped.append(info.id)
                continue
            seconds = [str(d) for d in info.durations]
            for size in info.sizes:
                offered = info.price_for(size)
                entry = (
                    CatalogEntry.objects.select_for_update()
                    .filter(provider=provider, model=info.id, size=size)
                    .first()
                )
                if entry is None:
                    CatalogEntry.objects.create(
                        provider=provider,
                        model=info.id,
                        size=size,
                        seconds=seconds,
                        price_per_second=offered or 0,
                    )
                    result.added += 1
                    result.unpriced += offered is None
                    continue
                price = entry.price_per_second if offered is None else offered
                if entry.seconds != seconds or entry.price_per_second != price:
                    entry.seconds, entry.price_per_second = seconds, price
                    entry.save(update_fields=["seconds", "price_per_second"])
                    result.updated += 1
    return result


def _lower(text: str) -> str:
    """ "The provider has…" -> "has…" after the provider's name; other words as they are."""
    return text.removeprefix("The provider ").rstrip(".")
