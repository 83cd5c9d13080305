"""A share link made through the UI, opened in a fresh browser context that never logged in:
the video plays, and the page offers nothing of the dashboard."""

from __future__ import annotations

import os
import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider, ShareLink, Video
from tests.conftest import Simulator

from .conftest import archived, log_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # see tests/e2e/conftest.py

pytestmark = pytest.mark.e2e


def wait_until(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python: page.wait_for_function needs eval, which the CSP bans."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        page.wait_for_timeout(50)


def test_a_share_link_plays_in_a_fresh_context_without_logging_in(
    page: Page,
    page_errors: list[str],
    browser: Browser,
    live_server: LiveServer,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    (video,) = archived(provider, simulator, 1)
    Video.objects.filter(pk=video.pk).update(owner=alice)  # imported: make it alice's to share
    log_in(page)
    page.goto(video.get_absolute_url())
    page.get_by_role("link", name="Share").click()
    expect(page.get_by_role("heading", name=f"Share video #{video.pk}")).to_be_visible()
    page.get_by_label("Stops working after").select_option(label="1 day")
    page.get_by_role("button", name="Make a share link").click()
    expect(page.get_by_text("Made a share link.")).to_be_visible()
    url = page.locator("input.share-url").first.input_value()
    assert url.startswith(live_server.url + "/s/") and ShareLink.objects.count() == 1

    outsider = browser.new_context(viewport={"width": 390, "height": 844})  # no cookies at all
    try:
        stranger = outsider.new_page()
        stranger.goto(url)
        expect(stranger.get_by_role("heading", name=video.prompt[:40])).to_be_visible()
        player = "document.querySelector('video')"
        stranger.evaluate(f"{player}.muted = true; {player}.play()")
        wait_until(stranger, f"{player}.readyState >= 2 && {player}.duration > 0")
        wait_until(stranger, f"{player}.currentTime > 0")  # it really plays, not just loads
        assert stranger.locator("nav").count() == 0  # nothing of the dashboard
        assert stranger.locator("a").count() == 0
        stranger.goto(live_server.url + "/")
        expect(stranger.get_by_role("button", name="Log in")).to_be_visible()  # still outside
    finally:
        outsider.close()
    assert page_errors == []


def test_the_share_and_audit_pages_pass_axe_at_a_phone_width(
    browser: Browser,
    live_server: LiveServer,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from jobs.services import sharing

    from .test_accessibility import PHONE, context_for, violations

    (video,) = archived(provider, simulator, 1)
    Video.objects.filter(pk=video.pk).update(owner=alice)
    video.refresh_from_db()
    open_link = sharing.create_link(user=alice, target=video, expires="7")
    locked = sharing.create_link(user=alice, target=video, expires="never", password="pw")
    gone = sharing.create_link(user=alice, target=video, expires="1")
    ShareLink.objects.filter(pk=gone.pk).update(expires_at=timezone.now() - timedelta(days=1))
    User.objects.filter(pk=alice.pk).update(is_staff=True)  # for the audit page
    pages = [
        ("alice", f"/videos/{video.pk}/share/"),
        ("alice", "/audit/"),
        ("", open_link.get_absolute_url()),
        ("", locked.get_absolute_url()),
        ("", gone.get_absolute_url()),
    ]
    found = {}
    for user, path in pages:
        context = context_for(browser, live_server, PHONE)
        try:
            page = context.new_page()
            if user:
                log_in(page, user)
            page.goto(path)
            expect(page.locator("main")).to_be_visible()
            if problems := violations(page):
                found[path] = problems
        finally:
            context.close()
    assert found == {}
