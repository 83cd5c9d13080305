"""Check connection as a service: what it stores on the provider, the level and words it
returns, and applying what it found to the capability flags."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib import messages

from jobs.models import Provider
from jobs.services.manage import SUGGESTED_PREFIX, apply_check, check_findings, check_provider
from tests.conftest import Simulator


@pytest.fixture
def locked(simulator: Simulator) -> Iterator[Simulator]:
    """The simulator wanting another key than the one the provider sends (sk-test)."""
    simulator.configure(api_key="sk-some-other-key")
    yield simulator
    simulator.configure(api_key=None)


def test_a_check_stores_its_findings_and_suggestions(provider: Provider) -> None:
    assert provider.checked_at is None
    level, text = check_provider(provider=provider)
    assert level == messages.SUCCESS
    assert text.startswith("the Videos API answers and the key is accepted; ")
    provider.refresh_from_db()
    assert provider.checked_at is not None
    lines = provider.check_report.splitlines()
    assert lines[0].startswith("The Videos API answers and the key is accepted")
    assert "✓ list: Listing jobs works (no jobs yet)." in lines
    assert any(line.startswith("? idempotency: ") for line in lines)
    assert lines[-1].startswith(SUGGESTED_PREFIX) and '"can_delete": true' in lines[-1]
    assert all(level == messages.INFO for level, _ in check_findings(provider))


def test_a_wrong_key_is_an_error_and_is_stored(provider: Provider, locked: Simulator) -> None:
    level, text = check_provider(provider=provider)
    assert level == messages.ERROR
    assert text.startswith("the Videos API answered, but the key was refused: ")
    assert "sk-test" not in text
    provider.refresh_from_db()
    assert provider.check_report.splitlines()[0] == "The key was refused."
    assert SUGGESTED_PREFIX not in provider.check_report
    level, text = apply_check(provider=provider)
    assert level == messages.WARNING and "nothing to apply" in text


def test_what_does_not_work_is_a_warning_and_can_be_applied(
    provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["litellm"])
    level, text = check_provider(provider=provider)
    assert level == messages.WARNING and "(not: list, delete)" in text
    provider.refresh_from_db()
    warnings = [line for level, line in check_findings(provider) if level == messages.WARNING]
    assert [line.split(":")[0] for line in warnings] == ["✗ list", "✗ delete"]
    assert (provider.can_list, provider.can_delete, provider.can_edit) == (True, True, False)
    level, text = apply_check(provider=provider)
    assert level == messages.SUCCESS
    assert text == "set from the last check: list / import off, edit on, extend on, delete off."
    provider.refresh_from_db()
    assert (provider.can_list, provider.can_delete) == (False, False)
    assert (provider.can_edit, provider.can_extend, provider.can_remix) == (True, True, True)
    assert provider.serves_variants  # not verified (nothing finished to try): left as it was
    assert apply_check(provider=provider) == (
        messages.INFO,
        "the settings already match what the last check found.",
    )


def test_the_routing_hint_makes_a_litellm_list_work(
    provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(quirks=["litellm"])
    simulator.seed(1)
    provider.routing_hint = "openai"
    provider.save()
    check_provider(provider=provider)
    apply_check(provider=provider)
    provider.refresh_from_db()
    assert provider.can_list and not provider.serves_variants and not provider.can_delete


def test_nothing_to_apply_before_any_check(provider: Provider) -> None:
    level, text = apply_check(provider=provider)
    assert level == messages.WARNING and "run “Check connection” first" in text


def test_a_server_without_the_videos_api_is_stored_as_such(db: None) -> None:
    from tests.conftest import StandInHandler, serving

    class Html404(StandInHandler):
        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            self.reply(404, "text/html", b"<h1>Not Found</h1>")

        do_POST = do_DELETE = do_GET  # noqa: N815

    with serving(Html404) as base_url:
        provider = Provider.objects.create(
            name="Web", base_url=base_url, api_key_env="SIMULATOR_API_KEY"
        )
        level, text = check_provider(provider=provider)
    assert level == messages.ERROR and "does not offer the Videos API" in text
    provider.refresh_from_db()
    assert provider.check_report.startswith("This provider does not offer the Videos API")
