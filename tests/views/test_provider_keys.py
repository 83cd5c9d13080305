"""Which environment variable may hold a provider's key.

A provider's key is sent as a Bearer token to whatever base URL a staff user typed in, so only
variables meant for it qualify: names starting with PROVIDER_KEY_PREFIX ("PROVIDER_KEY_") or
listed in PROVIDER_KEY_VARIABLES (default: SIMULATOR_API_KEY). Never SECRET_KEY & co.
Redaction of a key echoed back in errors is tested in test_deploy.py and the client's tests.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from django.forms import BooleanField
from django.test import Client
from django.urls import reverse

from jobs.models import Provider
from tests.conftest import StandInHandler, serving

SITE_SECRETS = ["SECRET_KEY", "DATABASE_URL", "DEMO_PASSWORD"]


def admin_form_data(response: Any, **changes: str) -> dict[str, Any]:
    """What the browser would post back from an admin add/change page, with `changes`."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if isinstance(field, BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    data.update(changes)
    return data


@pytest.fixture
def staff_client(client: Client, staff: Any) -> Client:
    client.force_login(staff)
    return client


def refused_next_to_the_field(response: Any, name: str) -> None:
    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["api_key_env"], errors
    message = errors["api_key_env"][0]
    assert f"“{name}” is not a provider key variable" in message
    assert "PROVIDER_KEY_" in message
    # Rendered in the field's own row of the admin form.
    body = response.content.decode()
    row = body[body.index("field-api_key_env") :]
    row = row[: row.index("</div>\n</div>") if "</div>\n</div>" in row else 2000]
    assert "errorlist" in row and "is not a provider key variable" in row


@pytest.mark.parametrize("name", SITE_SECRETS)
def test_the_add_form_refuses_a_site_secret_as_key_variable(
    staff_client: Client, name: str
) -> None:
    url = reverse("admin:jobs_provider_add")
    data = admin_form_data(
        staff_client.get(url), name="Hostile", base_url="https://evil.example/v1", api_key_env=name
    )

    r = staff_client.post(url, data)

    refused_next_to_the_field(r, name)
    assert not Provider.objects.exists()


@pytest.mark.parametrize("name", SITE_SECRETS)
def test_the_change_form_refuses_a_site_secret_as_key_variable(
    staff_client: Client, db: Any, name: str
) -> None:
    provider = Provider.objects.create(
        name="Gateway", base_url="https://gateway.example/v1", api_key_env="PROVIDER_KEY_GATEWAY"
    )
    url = reverse("admin:jobs_provider_change", args=[provider.pk])
    data = admin_form_data(
        staff_client.get(url), base_url="https://evil.example/v1", api_key_env=name
    )

    r = staff_client.post(url, data)

    refused_next_to_the_field(r, name)
    provider.refresh_from_db()
    assert provider.api_key_env == "PROVIDER_KEY_GATEWAY"
    assert provider.base_url == "https://gateway.example/v1"  # nothing of the post was kept


@pytest.mark.parametrize("name", ["PROVIDER_KEY_OPENROUTER", "SIMULATOR_API_KEY"])
def test_provider_key_variables_are_accepted(staff_client: Client, name: str) -> None:
    url = reverse("admin:jobs_provider_add")
    data = admin_form_data(
        staff_client.get(url), name="Fine", base_url="https://gateway.example/v1", api_key_env=name
    )
    r = staff_client.post(url, data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    assert Provider.objects.get(name="Fine").api_key_env == name


def test_the_allowed_list_is_a_setting(staff_client: Client, settings: Any) -> None:
    settings.PROVIDER_KEY_VARIABLES = []
    url = reverse("admin:jobs_provider_add")
    data = admin_form_data(
        staff_client.get(url),
        name="Sim",
        base_url="http://127.0.0.1:8001/v1",
        api_key_env="SIMULATOR_API_KEY",
    )
    refused_next_to_the_field(staff_client.post(url, data), "SIMULATOR_API_KEY")
    assert not Provider.objects.exists()


# --- a row that got past the form -------------------------------------------------------------


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A provider that answers every GET with an empty list and records the headers it got."""
    seen: list[dict[str, str]] = []

    class Recording(StandInHandler):
        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = {"object": "list", "data": [], "has_more": False}
            self.reply(200, "application/json", json.dumps(body).encode())

    with serving(Recording) as base_url:
        yield base_url, seen


def test_a_row_naming_secret_key_sends_no_authorization_on_check_connection(
    staff_client: Client,
    recorder: tuple[str, list[dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base_url, seen = recorder
    site_secret = "django-insecure-" + secrets.token_hex(16)
    own_key = "sk-own-" + secrets.token_hex(8)
    monkeypatch.setenv("SECRET_KEY", site_secret)
    monkeypatch.setenv("PROVIDER_KEY_RECORDER", own_key)
    hostile = Provider.objects.create(
        name="Hostile", base_url=base_url, api_key_env="PROVIDER_KEY_RECORDER"
    )
    # Written by hand or before the rule: the validators never ran on it.
    Provider.objects.filter(pk=hostile.pk).update(api_key_env="SECRET_KEY")
    hostile.refresh_from_db()
    assert hostile.api_key == ""
    # A control in the same action: a proper variable's key does arrive.
    control = Provider.objects.create(
        name="Control", base_url=base_url, api_key_env="PROVIDER_KEY_RECORDER"
    )

    r = staff_client.post(
        reverse("admin:jobs_provider_changelist"),
        {"action": "check_connection", "_selected_action": [hostile.pk]},
        follow=True,
    )
    assert r.status_code == 200
    assert seen == [] or all("authorization" not in headers for headers in seen), seen
    assert site_secret not in r.content.decode()
    assert "is not a provider key variable" in r.content.decode()  # said, not "not set"

    staff_client.post(
        reverse("admin:jobs_provider_changelist"),
        {"action": "check_connection", "_selected_action": [control.pk]},
    )
    assert seen and seen[-1].get("authorization") == f"Bearer {own_key}"
    assert not any(site_secret in value for headers in seen for value in headers.values())
