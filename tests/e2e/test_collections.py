"""Bulk actions and collections in a real browser (issue 14, points 3 and 4): tick two rows,
download them as a zip and check its entries; gather them in a collection, open its page and
play it all; and no axe-core violation on the new pages."""

from __future__ import annotations

import zipfile

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from jobs.lib.names import download_name
from jobs.models import Collection, Provider, Video
from tests.conftest import Simulator

from .conftest import archived, log_in
from .test_accessibility import report, violations
from .test_features import wait_until  # page.wait_for_function needs eval, banned by the CSP

pytestmark = pytest.mark.e2e


def entries(video: Video) -> set[str]:
    files = (video.video_file, video.thumbnail_file, video.spritesheet_file)
    return {download_name(video.pk, video.prompt, str(f.name)) for f in files if f}


def test_two_ticked_rows_download_as_one_zip(
    page: Page, page_errors: list[str], alice: User, provider: Provider, simulator: Simulator
) -> None:
    first, second, third = archived(provider, simulator, 3)
    log_in(page)
    page.get_by_label(f"Select #{first.pk}", exact=True).check()
    page.get_by_label(f"Select #{third.pk}", exact=True).check()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 selected")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download zip").click()
    download = info.value
    assert download.suggested_filename.startswith("videos-")
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == entries(first) | entries(third)
        mp4 = download_name(first.pk, first.prompt, str(first.video_file.name))
        assert archive.read(mp4) == first.video_file.read()
    # The page stayed put, the ticks too: another action works at once.
    expect(page.locator("[data-bulk-count]")).to_have_text("2 selected")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("video")).to_have_count(2)
    assert page_errors == []


def test_add_two_videos_to_a_new_collection_and_play_it_all(
    page: Page, page_errors: list[str], alice: User, provider: Provider, simulator: Simulator
) -> None:
    first, second = archived(provider, simulator, 2)
    log_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collections").click()
    page.get_by_label("Name").fill("Showreel")
    page.get_by_role("button", name="Make collection").click()
    expect(page.get_by_role("heading", name="Showreel")).to_be_visible()
    collection = Collection.objects.get(name="Showreel")

    page.goto("/")
    page.get_by_label("Select every video on this page").check()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 selected")
    page.get_by_label("Collection", exact=True).select_option(label="Showreel")
    page.get_by_role("button", name="Add to collection").click()
    expect(page.locator("#toasts")).to_contain_text("Added 2 videos to “Showreel”.")
    assert [v.pk for v in collection.videos.order_by("pk")] == [first.pk, second.pk]

    page.goto(collection.get_absolute_url())
    expect(page.locator(".gallery > li.vcard")).to_have_count(2)
    page.get_by_role("button", name="Play all").click()
    now = page.locator("#now-playing")
    expect(now).to_contain_text(f"Playing 1 of 2: #{first.pk}")
    player = "document.querySelector('#playlist-player')"
    wait_until(page, f"{player}.readyState >= 1 && !{player}.paused")
    page.evaluate(f"{player}.currentTime = {player}.duration - 0.2")  # to its end, quickly
    expect(now).to_contain_text(f"Playing 2 of 2: #{second.pk}")
    expect(page.locator("[data-playlist-item][aria-current=true]")).to_contain_text(f"#{second.pk}")
    assert page_errors == []


def test_the_collection_pages_have_no_axe_violations(
    browser: Browser, live_server: LiveServer, alice: User, provider: Provider,
    simulator: Simulator,
) -> None:  # fmt: skip
    videos = archived(provider, simulator, 1)
    collection = Collection.objects.create(name="Reel", owner=alice)
    collection.videos.add(*videos)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, bypass_csp=True
    )
    try:
        page = context.new_page()
        log_in(page)
        found = {}
        for path in (
            "/",
            "/collections/",
            collection.get_absolute_url(),
            videos[0].get_absolute_url(),
        ):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if items := violations(page):
                found[path] = items
        assert not found, "axe-core found violations:\n" + report(found)
    finally:
        context.close()
