"""Phones: no app page scrolls sideways at 360 or 390 px, the menu folds behind a button whose
links (Admin and Log out included) are readable on the dark bar; at 1440 px it is all inline.
Saves docs/img/phone.png, the README's phone view."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider
from tests.conftest import Simulator

from .conftest import ROOT, log_in
from .pages import app_pages, lock_out

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")

pytestmark = pytest.mark.e2e

PHONE_PNG = ROOT / "docs" / "img" / "phone.png"
NAV_LINKS = ["Videos", "New video", "Batches", "Import", "Usage", "Admin"]

# How far the page reaches past the window, and what sticks out (for the failure message).
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 1 && el.getClientRects().length)
    .filter((el) => !el.closest("[hidden], .vh"))
    .slice(0, 5)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (typeof el.className === "string" ? "." + el.className.replace(/ /g, ".") : "")
      + " right=" + Math.round(el.getBoundingClientRect().right));
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


@pytest.fixture
def open_context(browser: Browser, live_server: LiveServer) -> Iterator[Any]:
    made: list[BrowserContext] = []

    def new(width: int, height: int, errors: list[str]) -> Page:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        made.append(context)
        page = context.new_page()

        def console(message: ConsoleMessage) -> None:
            # The 403, 404 and locked-out pages are visited on purpose.
            expected = re.search(r"status of (403|404|429) ", message.text)
            if message.type == "error" and not expected:
                errors.append(f"{message.text} ({page.url})")

        page.on("console", console)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc} ({page.url})"))
        return page

    yield new
    for context in made:
        context.close()


@pytest.mark.parametrize("width", [360, 390])
def test_no_app_page_scrolls_sideways_on_a_phone(
    width: int,
    open_context: Any,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    errors: list[str] = []
    pages = app_pages(alice, provider, simulator)
    member, visitor = open_context(width, 800, errors), open_context(width, 800, errors)
    log_in(member)
    too_wide = {}
    for app_page in pages:
        page = member if app_page.logged_in else visitor
        page.goto(app_page.path)
        page.wait_for_load_state("networkidle")
        seen = page.evaluate(OVERFLOW)
        if seen["scroll"] > seen["width"]:
            too_wide[app_page.name] = seen
    lock_out(visitor)
    seen = visitor.evaluate(OVERFLOW)
    if seen["scroll"] > seen["width"]:
        too_wide["locked out"] = seen
    assert not too_wide, f"pages wider than {width} px: {too_wide}"
    assert errors == []


def test_the_menu_folds_on_a_phone_and_its_links_are_readable(
    open_context: Any,
    staff: User,
    provider: Provider,
    transactional_db: None,
) -> None:
    errors: list[str] = []
    page = open_context(390, 844, errors)
    log_in_as_staff(page)
    menu = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Main")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav.get_by_role("link", name="Usage")).to_be_hidden()

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    for name in NAV_LINKS:
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        assert_on_screen_and_readable(page, link)
    log_out = nav.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible()
    assert_on_screen_and_readable(page, log_out)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.keyboard.press("Escape")  # closes again, focus back on the button
    expect(nav.get_by_role("link", name="Usage")).to_be_hidden()
    expect(menu).to_be_focused()

    menu.click()
    nav.get_by_role("link", name="Usage").click()
    expect(page).to_have_url(re.compile(r"/usage/$"))
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")
    assert errors == []


def test_the_menu_is_inline_on_a_desktop(
    open_context: Any, staff: User, provider: Provider, transactional_db: None
) -> None:
    errors: list[str] = []
    page = open_context(1440, 900, errors)
    log_in_as_staff(page)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    nav = page.get_by_role("navigation", name="Main")
    for name in NAV_LINKS:
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        assert_on_screen_and_readable(page, link)
    expect(nav.get_by_role("button", name="Log out")).to_be_visible()
    top = [nav.get_by_role("link", name=n, exact=True).bounding_box() for n in ("Videos", "Admin")]
    first, last = top
    assert first and last and abs(first["y"] - last["y"]) < 2  # one line
    assert errors == []


def test_the_phone_screenshot_is_saved(
    open_context: Any,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    """docs/img/phone.png for the README: the videos list on a 390 px phone, menu open."""
    errors: list[str] = []
    from .conftest import archived

    archived(provider, simulator, 3)
    page = open_context(390, 844, errors)
    log_in(page)
    expect(page.locator("img").first).to_be_visible()
    PHONE_PNG.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PHONE_PNG))
    assert PHONE_PNG.stat().st_size > 10_000
    assert errors == []


READABLE = """(el) => {
  // The text colour against the first opaque background behind it (WCAG contrast ratio).
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let node = el, bg = null;
  while (node && node.nodeType === 1) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length >= 3 && (c.length === 3 || c[3] > 0.9)) { bg = c; break; }
    node = node.parentElement;
  }
  bg = bg || [255, 255, 255];
  const fg = rgb(getComputedStyle(el).color);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const box = el.getBoundingClientRect();
  const ratio = (a + 0.05) / (b + 0.05);
  return {ratio, left: box.left, right: box.right, width: window.innerWidth};
}"""


def log_in_as_staff(page: Page) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("staff-pass-123")  # the `staff` fixture's
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Videos")).to_be_visible()


def assert_on_screen_and_readable(page: Page, locator: Any) -> None:
    seen = locator.evaluate(READABLE)
    assert seen["left"] >= 0 and seen["right"] <= seen["width"], seen
    assert seen["ratio"] >= 4.5, seen
