"""The gallery view in a real browser (issue 13, point 7): a toggle beside the table that is
remembered per user (a reload, a new browser), cards whose status, progress and cost follow the
same poll as the table, and hover-scrub through the archived spritesheet, by pointer or keys."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Profile, Provider, Video
from simulator.media import SPRITE_COLUMNS
from tests.conftest import Simulator

from .conftest import ROOT, archived, log_in

pytestmark = pytest.mark.e2e

GALLERY_PNG = ROOT / "docs" / "img" / "gallery.png"


def rendering(provider: Provider, owner: User) -> Video:
    return Video.objects.create(
        provider=provider,
        owner=owner,
        video_id="video_gallery_live",
        submission=Video.Submission.SUBMITTED,
        status=Video.Status.IN_PROGRESS,
        progress=20,
        prompt="a paper crane unfolding itself on a windowsill",
        model="sora-2",
        size="1280x720",
        seconds="8",
        cost_estimate="0.80",
    )


def background_position(page: Page, video: Video) -> str:
    return str(
        page.locator(f"#video-{video.pk} .frame").evaluate(
            "(el) => getComputedStyle(el).backgroundPosition"
        )
    )


def test_the_gallery_is_remembered_live_and_scrubs_the_spritesheet(
    live_server: LiveServer,
    browser: Browser,
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    artifacts: Path,
) -> None:
    done = archived(provider, simulator, 3)
    for video in done:
        Video.objects.filter(pk=video.pk).update(owner=alice)
    live = rendering(provider, alice)
    log_in(page)
    assert not Profile.objects.filter(user=alice).exists()  # nothing stored until a choice
    expect(page.locator("table.videos")).to_be_visible()
    page.get_by_role("button", name="Gallery").click()
    expect(page.get_by_role("button", name="Gallery")).to_have_attribute("aria-pressed", "true")
    cards = page.locator(".gallery > li.vcard")
    expect(cards).to_have_count(4)
    assert Profile.objects.get(user=alice).view == "gallery"

    # Live on each card, through the table's one poll (which names the gallery).
    card = page.locator(f"#video-{live.pk}")
    expect(card.locator(".badge")).to_have_text("In progress")
    expect(card.locator(".cost")).to_have_text("$0.80")
    expect(page.locator("#video-table")).to_have_attribute("hx-get", re.compile("view=gallery"))
    Video.objects.filter(pk=live.pk).update(progress=65)
    expect(card.locator(".pct")).to_have_text("65%")
    Video.objects.filter(pk=live.pk).update(status=Video.Status.FAILED, progress=65)
    expect(card.locator(".badge")).to_have_text("Failed")
    expect(card.locator(".cost")).to_have_text("$0.00")  # a failed job costs nothing

    # Hover-scrub: the pointer's position across the card picks the spritesheet's tile.
    target = max(done, key=lambda v: int(v.seconds))  # the most frames to move through
    scrub = page.locator(f"#video-{target.pk} a.scrub")
    scrub.scroll_into_view_if_needed()
    box = scrub.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] / 2)
    thumb = scrub.locator("img")
    expect(thumb).to_have_css("opacity", "0")  # the sheet shows through
    first = background_position(page, target)
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "([sel, before]) => getComputedStyle(document.querySelector(sel)).backgroundPosition"
        " !== before",
        arg=[f"#video-{target.pk} .frame", first],
    )
    last = background_position(page, target)
    # The simulator's sheet: one tile a second, SPRITE_COLUMNS a row; the last is bottom right.
    rows = math.ceil(int(target.seconds) / SPRITE_COLUMNS)
    assert first == "0% 0%" and last == f"100% {100 if rows > 1 else 0}%", (first, last)
    page.mouse.move(0, 0)  # leaving the card brings the thumbnail back
    expect(thumb).to_have_css("opacity", "1")

    # By keyboard: arrows step through the frames; Tab still moves on (nothing is trapped).
    scrub.focus()
    page.keyboard.press("ArrowRight")
    expect(thumb).to_have_css("opacity", "0")
    stepped = background_position(page, target)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([sel, before]) => getComputedStyle(document.querySelector(sel)).backgroundPosition"
        " !== before",
        arg=[f"#video-{target.pk} .frame", stepped],
    )
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('scrub')") is False
    expect(thumb).to_have_css("opacity", "1")

    page.mouse.move(0, 0)
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=artifacts / "gallery.png")
    GALLERY_PNG.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifacts / "gallery.png", GALLERY_PNG)

    # Remembered for the user, not the browser: a reload, then another browser altogether.
    page.reload()
    expect(page.locator(".gallery")).to_be_visible()
    other = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    other.set_default_timeout(15_000)
    phone = other.new_page()
    log_in(phone)
    expect(phone.locator(".gallery > li.vcard")).to_have_count(4)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390, "sideways scroll"
    columns = phone.locator(".gallery").evaluate(
        "(el) => getComputedStyle(el).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2
    phone.get_by_role("button", name="Table").click()
    expect(phone.locator("table.videos")).to_be_visible()
    other.close()
    assert Profile.objects.get(user=alice).view == "table"
    assert not page_errors
