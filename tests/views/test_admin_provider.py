"""The provider admin: its new fields, Check connection with every finding, applying what the
check found, and filling the catalog from the provider's model list."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from jobs.models import CatalogEntry, Provider
from tests.conftest import Simulator

CHANGELIST = "admin:jobs_provider_changelist"


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    client.force_login(staff)
    return client


def act(staff_client: Client, action: str, *providers: Provider) -> str:
    r = staff_client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [p.pk for p in providers]},
        follow=True,
    )
    assert r.status_code == 200
    return r.content.decode()


def test_check_connection_shows_each_finding_and_warns_of_what_does_not_work(
    staff_client: Client, provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["litellm"])
    body = act(staff_client, "check_connection", provider)
    assert "Sim: the Videos API answers and the key is accepted" in body
    assert "Sim · ✗ delete: The provider cannot delete its copies" in body
    assert "Sim · ✗ list: The provider refused to list" in body
    assert "Sim · ✓ remix: The provider offers remix" in body
    assert "Sim · ? idempotency: " in body
    assert 'class="warning">Sim · ✗ delete' in body


def test_applying_the_last_check_sets_the_flags(
    staff_client: Client, provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["new-api"])
    body = act(staff_client, "apply_check", provider)
    assert "Sim: there is nothing to apply: run “Check connection” first" in body
    act(staff_client, "check_connection", provider)
    body = act(staff_client, "apply_check", provider)
    assert "Sim: set from the last check: list / import off, delete off." in body
    provider.refresh_from_db()
    assert not provider.can_list and not provider.can_delete and provider.can_remix


def test_filling_the_catalog_from_openrouter(
    staff_client: Client, openrouter_simulator: Simulator
) -> None:
    provider = Provider.objects.create(
        name="OR",
        dialect=Provider.Dialect.OPENROUTER,
        base_url=openrouter_simulator.base_url,
        api_key_env="SIMULATOR_API_KEY",
    )
    body = act(staff_client, "fill_catalog", provider)
    assert "OR: 3 models listed; " in body
    entry = CatalogEntry.objects.get(provider=provider, model="openai/sora-2", size="720x1280")
    assert entry.price_per_second == Decimal("0.1000") and entry.seconds == ["4", "8", "12"]


def test_filling_the_catalog_says_why_it_could_not(
    staff_client: Client, provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["no_models"])
    body = act(staff_client, "fill_catalog", provider)
    assert "Sim: “Sim” has no model list (GET /models answered 404)" in body


def test_the_change_page_shows_the_new_fields_and_the_last_check(
    staff_client: Client, provider: Provider
) -> None:
    url = reverse("admin:jobs_provider_change", args=[provider.pk])
    body = staff_client.get(url).content.decode()
    assert "Not checked yet" in body
    for field in ("dialect", "can_edit", "can_extend", "can_delete", "serves_variants"):
        assert f'name="{field}"' in body, field
    assert 'name="routing_hint"' in body and 'name="check_report"' not in body
    act(staff_client, "check_connection", provider)
    body = staff_client.get(url).content.decode()
    assert "<div>✓ delete: Deleting works" in body
    Provider.objects.filter(pk=provider.pk).update(check_report="<script>x</script>")
    assert "<script>x</script>" not in staff_client.get(url).content.decode()  # escaped
