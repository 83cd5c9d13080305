"""An extension from a phone: the detail page offers it, the form takes a prompt and the seconds
to add, and the new job reaches Completed in the table without a reload."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, ViewportSize, expect

from jobs.models import Provider, Video
from tests.conftest import Simulator

from .conftest import Poller, archived, log_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")

pytestmark = pytest.mark.e2e

SLOW = 30_000  # ms: the single tracker thread and a loaded box add up
PHONE = ViewportSize(width=390, height=844)


def test_an_extension_submitted_on_a_phone_reaches_completed(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
) -> None:
    provider.can_extend = True
    provider.save()
    (source,) = archived(provider, simulator, 1)
    page.set_viewport_size(PHONE)
    log_in(page)
    page.goto(source.get_absolute_url())
    page.get_by_role("link", name="Extend this").click()
    expect(page.get_by_role("heading", name="Extend")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_label("Prompt").fill("then the camera pulls back")
    page.get_by_label("Seconds to add").select_option("4")
    page.get_by_role("button", name="Extend").click()

    expect(page).to_have_url(re.compile(r"/#video-\d+$"))
    extension = Video.objects.get(kind=Video.Kind.EXTENSION)
    assert (extension.source_id, extension.added_seconds) == (source.pk, "4")
    row = page.locator(f"#video-{extension.pk}")
    expect(row).to_contain_text("Completed", timeout=SLOW)
    extension.refresh_from_db()
    assert extension.seconds == str(int(source.seconds) + 4)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page_errors == []
