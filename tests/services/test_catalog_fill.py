"""Filling a provider's catalog from its model list (OpenRouter: lengths, sizes, prices)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from jobs.models import CatalogEntry, Provider
from jobs.services.catalog import fill_catalog
from tests.conftest import Simulator, StandInHandler, serving


def openrouter(base_url: str) -> Provider:
    return Provider.objects.create(
        name="OpenRouter",
        dialect=Provider.Dialect.OPENROUTER,
        base_url=base_url,
        api_key_env="SIMULATOR_API_KEY",
    )


def entries(provider: Provider) -> dict[tuple[str, str], tuple[list[str], Decimal]]:
    return {
        (e.model, e.size): (e.seconds, e.price_per_second)
        for e in CatalogEntry.objects.filter(provider=provider)
    }


def test_openrouters_models_fill_lengths_sizes_and_prices(
    db: None, openrouter_simulator: Simulator
) -> None:
    provider = openrouter(openrouter_simulator.base_url)
    result = fill_catalog(provider=provider)
    found = entries(provider)
    assert found[("openai/sora-2-pro", "1280x720")] == (["4", "8", "12"], Decimal("0.3000"))
    assert found[("openai/sora-2-pro", "1920x1080")] == (["4", "8", "12"], Decimal("0.5000"))
    assert found[("google/veo-3.1-lite", "720x1280")] == (["4", "6", "8"], Decimal("0.0500"))
    assert (result.listed, result.added, result.updated) == (3, len(found), 0)
    assert str(result).startswith(f"3 models listed; {len(found)} catalog entries added, 0 updated")
    again = fill_catalog(provider=provider)  # nothing changed at the provider: nothing here
    assert (again.added, again.updated) == (0, 0) and entries(provider) == found


def test_a_price_the_provider_does_not_name_is_kept(db: None) -> None:
    clip = {
        "id": "clip-1",
        "supported_durations": [5, 10],
        "supported_sizes": ["1280x720", "720x1280"],
    }
    chat = {"id": "chat-model"}  # a gateway lists its chat models too: no sizes, not a video
    models = [clip, chat]

    class Catalog(StandInHandler):
        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            self.reply(200, "application/json", json.dumps({"data": models}).encode())

    with serving(Catalog) as base_url:
        provider = Provider.objects.create(
            name="Gw", base_url=base_url, api_key_env="SIMULATOR_API_KEY"
        )
        CatalogEntry.objects.create(
            provider=provider,
            model="clip-1",
            size="1280x720",
            seconds=["5"],
            price_per_second=Decimal("0.2"),
        )
        result = fill_catalog(provider=provider)
    assert entries(provider) == {
        ("clip-1", "1280x720"): (["5", "10"], Decimal("0.2000")),  # lengths updated, price kept
        ("clip-1", "720x1280"): (["5", "10"], Decimal("0.0000")),
    }
    assert (result.added, result.updated, result.unpriced) == (1, 1, 1)
    assert "1 new entries have no price" in str(result)
    assert "named no sizes or lengths for them: chat-model." in str(result)


def test_get_models_without_sizes_adds_nothing_and_says_why(provider: Provider) -> None:
    before = entries(provider)
    result = fill_catalog(provider=provider)
    assert result.added == result.updated == 0 and entries(provider) == before
    assert "sora-2" in result.skipped and "named no sizes or lengths" in str(result)


def test_a_provider_without_a_model_list_is_told_in_words(
    provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["no_models"])
    with pytest.raises(ValidationError) as info:
        fill_catalog(provider=provider)
    assert info.value.messages == [
        "“Sim” has no model list (GET /models answered 404); fill the catalog by hand."
    ]


def test_a_refused_key_is_told_in_words(provider: Provider, simulator: Simulator) -> None:
    simulator.configure(api_key="sk-some-other-key")
    try:
        with pytest.raises(ValidationError, match="refused the API key"):
            fill_catalog(provider=provider)
    finally:
        simulator.configure(api_key=None)
